"""Handing over to Novus: the post-deploy step within `pulumi up`, and the
owner-only file and table of the five values the Novus page asks for."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from presencesync.config import Settings
from presencesync.errors import PresenceSyncError
from presencesync.postdeploy import post_deploy
from presencesync.stack_outputs import NOVUS_FIELDS, SECRET_FIELDS, Deployed
from presencesync.stack_tenant import stack_deployer


def post_deploy_step(settings: Settings) -> Callable[[Mapping[str, Any]], Awaitable[None]]:
    """Post-deploy within `pulumi up`, given the stack outputs once every resource is answered
    (deployment_hooks.py says when it runs); its failure fails `pulumi up`, naming the step."""
    import asyncio

    import pulumi

    async def step(outputs: Mapping[str, Any]) -> None:
        deployed = Deployed.from_outputs(dict(outputs))
        deployer = stack_deployer(pulumi.get_stack(), settings)  # the stack's tenant, as the provider signs in
        for line in deployer.set_aside:
            pulumi.log.info(f"post-deploy: {line}")
        drift = await asyncio.to_thread(post_deploy, settings, deployed, check=False, now=datetime.now(UTC),
                                        say=pulumi.log.info, env=deployer.env)
        if drift:
            raise pulumi.RunError("post-deploy failed: " + "; ".join(drift))
        target = Path(f"novus-config.{pulumi.get_stack()}.json")
        if notice := secret_change_notice(target, deployed):
            pulumi.log.warn(f"post-deploy: {notice}")
        write_handover(target, deployed)
        for line in handover_table(deployed, show_secrets=False):
            pulumi.log.info(line)
        pulumi.log.info(f"post-deploy: wrote {target} (owner-only) with the Novus values")

    return step


class HandoverError(PresenceSyncError):
    """The hand-over file cannot be written safely; the message names the path and the fix."""


def secret_change_notice(path: Path, deployed: Deployed) -> str | None:
    """What to tell the admin when the hand-over file at `path` holds another client secret than now."""
    try:
        with _open_regular(path, os.O_RDONLY) as handle:
            before = json.loads(handle.read()).get("clientSecret")
    except (OSError, ValueError, AttributeError, HandoverError):
        return None
    if before is None or before == deployed.text("clientSecret"):
        return None
    deadline = (f"before {deployed.previous_client_secret_end_date}, when the one Novus has stops working"
                if deployed.previous_client_secret_end_date else "now: the one Novus has was replaced")
    return f"the client secret changed: enter the new one on the Novus page {deadline}"


def write_handover(path: Path, deployed: Deployed) -> None:
    """Write the Novus values as JSON, readable by the owner only, even if the file existed."""
    values: dict[str, Any] = {k: deployed.text(k) for k, _ in NOVUS_FIELDS}
    if len(deployed.sync_users) > 1:  # Novus's collection, in its page order
        values["syncUsers"] = [{"userName": name, "password": password.reveal()}
                               for name, password in deployed.sync_users]
    data = json.dumps(values, indent=2) + "\n"
    with _open_regular(path, os.O_WRONLY | os.O_CREAT) as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.truncate()
        handle.write(data)


def _open_regular(path: Path, flags: int) -> TextIO:
    """Open `path` only as a regular file: never through a symbolic link (which could point the secrets
    anywhere the process may write), never a device or pipe (which would block or never end)."""
    not_regular = HandoverError(f"{path}: exists and is not a regular file; remove it, or choose another path "
                                "with --output")
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a pipe with no reader
            raise not_regular from None
        if error.errno == errno.ELOOP:
            raise HandoverError(f"{path}: is a symbolic link; remove it, or choose another path with "
                                "--output") from None
        raise HandoverError(f"{path}: cannot be opened ({error.strerror}); choose another path with --output") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise not_regular
    return os.fdopen(descriptor, "r" if flags & os.O_ACCMODE == os.O_RDONLY else "w", encoding="utf-8")


def handover_table(deployed: Deployed, *, show_secrets: bool) -> list[str]:
    """The Novus page's values; with several sync users, each one's user name and password in the order of the
    page's "Collection of users with UCWA access permissions"."""
    rows = [(label, deployed.text(k), k in SECRET_FIELDS) for k, label in NOVUS_FIELDS
            if k not in ("userName", "password")]
    several = len(deployed.sync_users) > 1
    for number, (name, password) in enumerate(deployed.sync_users, start=1):
        suffix = f" {number}" if several else ""
        rows += [(f"User name{suffix}", name, False), (f"Password{suffix}", password.reveal(), True)]
    width = max(len(label) for label, _, _ in rows)
    return [f"{label:<{width}}  {value if show_secrets or not secret else '********'}" for label, value, secret in rows]
