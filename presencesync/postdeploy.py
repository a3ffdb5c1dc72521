"""After `pulumi up`: grant consent when asked, prove the sync user can sign in, and say what drifted.

The steps live in consent.py and sign_in.py; this runs them, the deployer's path (its token, the consent
reads and writes) beside the sync user's (the app's discovery and user realm) where the protocol
allows: the sign-in itself needs the consent in place. Used by the resource hook (handover.py) and by
`python -m presencesync post-deploy`. In check mode nothing is written, neither in the directory nor
on disk, and what no longer holds is returned as drift.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from presencesync.clouds import endpoints_for
from presencesync.config import Settings, parse_rfc3339
from presencesync.consent import ensure_consent
from presencesync.credentials import graph_token_source
from presencesync.errors import StepFailedError
from presencesync.graph import Deadline, Graph, GraphError
from presencesync.permissions import MICROSOFT_GRAPH, PROFILES
from presencesync.sign_in import Tokens, check_app_access, check_licence_and_ownership, resource_of
from presencesync.stack_outputs import Deployed

SECRET_WARNING = timedelta(days=30)


def post_deploy(settings: Settings, deployed: Deployed, *, check: bool, now: datetime,
                say: Callable[[str], None], env: Mapping[str, str] = os.environ) -> list[str]:
    """Run the steps; returns the drift, one line per thing that does not hold (empty: all is well)."""
    endpoints = endpoints_for(settings.environment, env)
    deadline = Deadline(settings.post_deploy_timeout)
    apis = PROFILES[settings.profile]
    drift: list[str] = []
    tokens = Tokens(endpoints, deployed, deadline, wait_for_consent=not check)

    with ThreadPoolExecutor(max_workers=len(apis) + 1) as pool:
        realm = pool.submit(tokens.warm_up)  # the sync user's path, beside the deployer's
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
        realm.result()

        # Verify: the sync user signs in to the new app with its new secret, once per resource API (side
        # by side), which needs the consent in place.
        sign_ins = {api: pool.submit(tokens.user_token, api, [f"{resource_of(api, endpoints)}/{s}" for s in api.scopes])
                    for api in apis}
        graph_token = None
        for api, sign_in in sign_ins.items():
            try:
                token = sign_in.result()
                if api.app_id == MICROSOFT_GRAPH:
                    graph_token = token
                say(f"sign-in as {deployed.text('userName')} for {api.api}: ok")
            except StepFailedError as failed:
                drift.append(str(failed))
    sync_user_id = None
    if graph_token is not None:
        user_graph = Graph(endpoints.graph, lambda: str(graph_token), deadline)
        sync_user_id, lacking = check_licence_and_ownership(user_graph, deployed)
        drift += lacking
    roles = {role: api for api in apis for role in api.roles}
    if roles:  # the app's own access: a client-credentials token, then the sync user's presence
        try:
            check_app_access(tokens, roles, endpoints, deadline, sync_user_id)
            say(f"application access to Microsoft Graph ({', '.join(roles)}): ok")
        except StepFailedError as failed:
            drift.append(str(failed))
    return drift + _secret_drift(deployed, now, say if not check else None)


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
