"""After `pulumi up`: grant consent when asked, prove the sync user can sign in, and say what drifted.

The steps live in consent.py and sign_in.py; this runs them, the deployer's path (its token, the consent
reads and writes) beside the sync user's (the app's discovery and user realm) where the protocol
allows: the sign-in itself needs the consent in place. Used by the resource hook (handover.py) and by
`python -m presencesync post-deploy`. In check mode nothing is written, neither in the directory nor
on disk, and what no longer holds is returned as drift.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from presencesync.clouds import Endpoints, endpoints_for
from presencesync.config import Secret, Settings
from presencesync.consent import ensure_consent
from presencesync.credentials import graph_token_source
from presencesync.errors import PresenceSyncError, StepFailedError
from presencesync.graph import Call, Deadline, Graph, GraphError
from presencesync.password_expiry import changed_drift, domain_validity, expiry, expiry_drift
from presencesync.permissions import MICROSOFT_GRAPH, PROFILES
from presencesync.rfc3339 import parse_rfc3339
from presencesync.sign_in import Tokens, check_app_access, check_licence_and_ownership, resource_of
from presencesync.stack_outputs import Deployed

SECRET_WARNING = timedelta(days=30)


def post_deploy(settings: Settings, deployed: Deployed, *, check: bool, now: datetime,
                say: Callable[[str], None], env: Mapping[str, str] = os.environ,
                password_expiry: dict[str, str] | None = None) -> list[str]:
    """Run the steps; returns the drift, one line per thing that does not hold (empty: all is well). Every
    sync user is proven side by side, so the round trips do not grow with their number; `password_expiry`,
    when given, receives each sync user's password expiry (a date, "never" or "unknown")."""
    endpoints = endpoints_for(settings.environment, env)
    deadline = Deadline(settings.post_deploy_timeout)
    apis = PROFILES[settings.profile]
    users = deployed.sync_users
    drift: list[str] = []
    tokens = Tokens(endpoints, deployed, deadline, wait_for_consent=not check)

    with ThreadPoolExecutor(max_workers=len(users) * (len(apis) + 2) + 2) as pool:
        realms = [pool.submit(tokens.warm_up, name) for name, _ in users]  # the sync users' path, beside the deployer's
        # What the deployer reads of the sync users' passwords and the tenant's policy, beside the sign-ins.
        directory = pool.submit(_password_facts, [name for name, _ in users], endpoints, env,
                                copy.deepcopy(tokens.http_cache), deadline)
        if settings.consent == "hook":
            # The deployer's client shares the app's discovery (a copy: each msal client guards its own).
            source = graph_token_source(endpoints, env, http_cache=copy.deepcopy(tokens.http_cache))
            try:
                ensure_consent(Graph(endpoints.graph, source.token, deadline), deployed, apis, write=not check,
                               drift=drift)
            except GraphError as error:
                raise StepFailedError("consent", str(error)) from None
        elif settings.consent == "manual" and not check:
            say(f"grant admin consent at {deployed.admin_consent_url} (waiting up to {settings.post_deploy_timeout} s)")
        for realm in realms:
            realm.result()

        # Verify: each sync user signs in to the new app with its new secret, once per resource API (all side
        # by side), which needs the consent in place; with its Graph token it reads its licence and ownership.
        sign_ins = {(name, api): pool.submit(
            tokens.user_token, f"sign-in{f' as {name}' if len(users) > 1 else ''} for {api.api}",
            [f"{resource_of(api, endpoints)}/{s}" for s in api.scopes], name, password.reveal())
            for name, password in users for api in apis}

        def licence_and_ownership(name: str) -> tuple[dict[str, Any], list[str]]:
            graph_sign_in = next(f for (n, api), f in sign_ins.items() if n == name and api.app_id == MICROSOFT_GRAPH)
            token = graph_sign_in.result()
            return check_licence_and_ownership(Graph(endpoints.graph, lambda: token, deadline), deployed, name)

        checks = {name: pool.submit(licence_and_ownership, name) for name, _ in users}
        refused: list[str] = []  # sync users whose password the sign-in refused
        for (name, api), sign_in in sign_ins.items():
            try:
                sign_in.result()
                say(f"sign-in as {name} for {api.api}: ok")
            except StepFailedError as failed:
                refused += [name] if "AADSTS50126" in str(failed) and name not in refused else []
                drift.append(str(failed))
        me: dict[str, dict[str, Any]] = {}
        for name, checked in checks.items():
            with contextlib.suppress(StepFailedError):  # a failed sign-in is reported above
                me[name], lacking = checked.result()
                drift += lacking
        validity, read_users = directory.result()
    drift += _password_drift(users, {**me, **read_users}, validity, refused, now, say, password_expiry)
    first = users[0][0]
    roles = {role: api for api in apis for role in api.roles}
    if roles:  # the app's own access: a client-credentials token, then the first sync user's presence
        try:
            check_app_access(tokens, roles, endpoints, deadline, me.get(first, {}).get("id"))
            say(f"application access to Microsoft Graph ({', '.join(roles)}): ok")
        except StepFailedError as failed:
            drift.append(str(failed))
    return drift + _secret_drift(deployed, now, say if not check else None)


def _password_facts(names: list[str], endpoints: Endpoints, env: Mapping[str, str], http_cache: dict[str, Any],
                    deadline: Deadline) -> tuple[dict[str, int | None] | None, dict[str, dict[str, Any]]]:
    """Read with the deployer's Graph access, in one `$batch` (of up to 19 sync users): each domain's password
    validity, and each sync user's password policies and last change, which a user whose sign-in is refused
    cannot read itself. Without the deployer's access: nothing (the sync users read their own; the policy is
    then unknown)."""
    try:
        source = graph_token_source(endpoints, env, interactive=False, http_cache=http_cache)
        answers = Graph(endpoints.graph, source.token, deadline).batch([
            Call("GET", "/domains?$select=id,passwordValidityPeriodInDays", what="password policy read"),
            *(Call("GET", f"/users/{quote(name)}?$select=id,passwordPolicies,lastPasswordChangeDateTime",
                   what=f"password read of {name}") for name in names)])
    except PresenceSyncError:
        return None, {}
    return domain_validity(answers[0].body.get("value", [])), {
        name: answer.body for name, answer in zip(names, answers[1:], strict=True)}


def _password_drift(users: tuple[tuple[str, Secret], ...], read: Mapping[str, Mapping[str, Any]],
                    validity: dict[str, int | None] | None, refused: list[str], now: datetime,
                    say: Callable[[str], None], password_expiry: dict[str, str] | None) -> list[str]:
    """Each sync user's password expiry (said, and drift when near), and a password changed behind the stack: the
    sign-in refuses the stack's password, which the directory says was changed since."""
    drift = []
    for name, _ in users:
        if name not in read:
            continue
        if name in refused:
            drift.append(changed_drift(name, read[name].get("lastPasswordChangeDateTime")))
            continue
        expires = expiry(name, read[name], validity)
        say(f"sync user {name}: password expires {expires}")
        if password_expiry is not None:
            password_expiry[name] = expires
        if line := expiry_drift(name, expires, now):
            drift.append(line)
    return drift


def _secret_drift(deployed: Deployed, now: datetime, say: Callable[[str], None] | None) -> list[str]:
    """The client secret Novus should hold expires soon, or a rotation is overdue; `say` tells the schedule."""
    drift = []
    end = parse_rfc3339(deployed.client_secret_end_date)
    fix = ("run pulumi up for the next rotation" if deployed.next_secret_rotation else
           "change presencesync:secretExpiry (or set secretRotationDays) and run pulumi up")
    if end - now < SECRET_WARNING:
        drift.append(f"client secret: the one Novus should hold expires {deployed.client_secret_end_date}, "
                     f"within 30 days: {fix}, then enter the new secret in Novus")
    if deployed.next_secret_rotation and parse_rfc3339(deployed.next_secret_rotation) <= now:
        drift.append(f"client secret: a rotation is due since {deployed.next_secret_rotation}: run pulumi up, "
                     "then enter the new secret in Novus")
    if say and deployed.previous_client_secret_end_date:
        say(f"client secret: Novus must hold the one ending {deployed.client_secret_end_date}; the previous one "
            f"stops working {deployed.previous_client_secret_end_date}, so update the Novus page before then if it "
            f"still has that one. Next rotation: {deployed.next_secret_rotation}")
    return drift
