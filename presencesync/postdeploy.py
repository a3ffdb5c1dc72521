"""After `pulumi up`: grant consent when asked, prove the sync user can sign in, hand over to Novus.

Used by the resource hook in tenant.py and by `python -m presencesync post-deploy`. Every failure names
its step and the fix. In check mode nothing is written, neither in the directory nor on disk, and what
no longer holds is returned as drift.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from presencesync.clouds import Endpoints, endpoints_for
from presencesync.config import Secret, Settings, parse_rfc3339
from presencesync.credentials import graph_token_source, token_claims
from presencesync.errors import PresenceSyncError
from presencesync.graph import (
    RETRYABLE_STATUS,
    Call,
    Deadline,
    DeadlineExceededError,
    Graph,
    GraphError,
    admin_consent_grants,
)
from presencesync.permissions import MICROSOFT_GRAPH, PROFILES, ApiPermissions

SECRET_WARNING = timedelta(days=30)
NOVUS_FIELDS = (("tenantId", "Tenant ID"), ("clientId", "Client ID"), ("clientSecret", "Client secret"),
                ("userName", "User name"), ("password", "Password"))
SECRET_FIELDS = ("clientSecret", "password")
# Answers right after creation that only mean "not replicated yet" (or, in manual mode, "not consented yet").
REPLICATION_CODES = frozenset({700016, 7000215, 65001})
AADSTS_ADVICE = {
    50076: "the sync user is asked for MFA: exclude it from MFA (Conditional Access, per-user MFA, security defaults)",
    50079: "the sync user must register for MFA: exclude it from MFA (Conditional Access, per-user MFA, "
           "security defaults)",
    53003: "Conditional Access blocks the sync user: find the policy in the Entra sign-in logs and exclude the user",
    65001: "admin consent is missing: grant it (consent: resource or hook) or open the admin-consent URL",
    7000218: "the app is not a public client and no secret was sent: set presencesync:publicClient to true",
    50126: "wrong user name or password: correct presencesync:syncUserPassword (or the user's password)",
    50034: "the sync user does not exist in this tenant: check presencesync:syncUser.userPrincipalName",
    50053: "the sync user is locked out: unlock it in the Entra admin center",
    50055: "the sync user's password has expired: reset it and set it never to expire",
    50057: "the sync user is disabled: enable the account",
    700016: "the application is not in this tenant: run pulumi up, or check the stack's outputs",
    7000215: "the client secret is wrong or expired: run pulumi up for a new secret, then update Novus",
}


class OutputsError(PresenceSyncError):
    """The stack outputs lack something post-deploy needs; the message names it."""


class StepFailedError(PresenceSyncError):
    """A post-deploy step found that something does not hold; `step` names it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True)
class Deployed:
    """What `pulumi up` produced, from the stack outputs."""

    novus: dict[str, str | Secret]
    directory_tenant_id: str
    application_object_id: str
    service_principal_object_id: str
    client_secret_end_date: str
    admin_consent_url: str
    previous_client_secret_end_date: str | None = None  # with rotation
    next_secret_rotation: str | None = None  # with rotation

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> Deployed:
        novus = outputs.get("novus")
        if not isinstance(novus, dict):
            raise OutputsError("the stack has no 'novus' output; run pulumi up first")
        missing = [f"novus.{k}" for k, _ in NOVUS_FIELDS if not isinstance(novus.get(k), str)]
        keys = ("directoryTenantId", "applicationObjectId", "servicePrincipalObjectId", "clientSecretEndDate",
                "adminConsentUrl")
        missing += [k for k in keys if not isinstance(outputs.get(k), str)]
        if missing:
            raise OutputsError(f"the stack outputs lack {', '.join(missing)}; run pulumi up first "
                               "(and read them with --show-secrets)")
        rotation = [outputs.get(k) for k in ("previousClientSecretEndDate", "nextSecretRotation")]
        return cls({k: Secret(novus[k]) if k in SECRET_FIELDS else novus[k] for k, _ in NOVUS_FIELDS},
                   *(str(outputs[k]) for k in keys), *(str(v) if isinstance(v, str) else None for v in rotation))

    def text(self, key: str) -> str:
        value = self.novus[key]
        return value.reveal() if isinstance(value, Secret) else value


def post_deploy(settings: Settings, deployed: Deployed, *, check: bool, now: datetime,
                say: Callable[[str], None], env: Mapping[str, str] = os.environ) -> list[str]:
    """Run the steps; returns the drift, one line per thing that does not hold (empty: all is well)."""
    endpoints = endpoints_for(settings.environment, env)
    deadline = Deadline(settings.post_deploy_timeout)
    apis = PROFILES[settings.profile]
    drift: list[str] = []

    if settings.consent == "hook":
        graph = Graph(endpoints.graph, graph_token_source(endpoints, env).token, deadline)
        try:
            _ensure_consent(graph, deployed, apis, write=not check, drift=drift)
        except GraphError as error:
            raise StepFailedError("consent", str(error)) from None
    elif settings.consent == "manual" and not check:
        say(f"grant admin consent at {deployed.admin_consent_url} (waiting up to {settings.post_deploy_timeout} s)")

    # Verify: the sync user signs in to the new app with its new secret, once per resource API.
    tokens = _Tokens(endpoints, deployed, deadline, wait_for_consent=not check)
    graph_token = None
    for api in apis:
        try:
            token = tokens.user_token(api, [f"{_resource(api, endpoints)}/{s}" for s in api.scopes])
            if api.app_id == MICROSOFT_GRAPH:
                graph_token = token
            say(f"sign-in as {deployed.text('userName')} for {api.api}: ok")
        except StepFailedError as failed:
            drift.append(str(failed))
    sync_user_id = None
    if graph_token is not None:
        user_graph = Graph(endpoints.graph, lambda: str(graph_token), deadline)
        sync_user_id, lacking = _check_licence_and_ownership(user_graph, deployed)
        drift += lacking
    roles = {role: api for api in apis for role in api.roles}
    if roles:  # the app's own access: a client-credentials token, then the sync user's presence
        try:
            _check_app_access(tokens, roles, endpoints, deadline, sync_user_id)
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


def _ensure_consent(graph: Graph, deployed: Deployed, apis: tuple[ApiPermissions, ...], *, write: bool,
                    drift: list[str]) -> None:
    """Make one AllPrincipals grant per API hold the required scopes, and the app hold its app roles;
    in check mode add what lacks to drift."""
    client = deployed.service_principal_object_id
    reads = [Call("GET", f"/servicePrincipals(appId='{api.app_id}')?$select=id,appRoles",
                  what=f"consent: look up {api.api}") for api in apis] + [
        Call("GET", admin_consent_grants(client), what="consent: read the grants"),
        Call("GET", f"/servicePrincipals/{client}/appRoleAssignments", what="consent: read the app role assignments")]
    answers = graph.batch(reads, replicating=True)
    grants, assigned = answers[-2].body.get("value", []), answers[-1].body.get("value", [])
    writes: list[Call] = []
    lacking: list[str] = []
    for api, answer in zip(apis, answers, strict=False):
        resource = answer.body["id"]
        offered = {r.get("value"): r.get("id") for r in answer.body.get("appRoles", [])}
        have_roles = {a.get("appRoleId") for a in assigned if a.get("resourceId") == resource}
        for role in api.roles:
            if role not in offered:
                raise StepFailedError("consent", f"the {api.api} service principal offers no application "
                                      f"permission {role}; check the tenant (az ad sp show --id {api.app_id})")
            if offered[role] not in have_roles:
                lacking.append(f"consent: {api.api} application permission {role} is not granted")
                writes.append(Call("POST", f"/servicePrincipals/{client}/appRoleAssignments", {
                    "principalId": client, "resourceId": resource, "appRoleId": offered[role]},
                    what=f"consent: grant {role}"))
        existing = [g for g in grants if g.get("resourceId") == resource]
        have = existing[0].get("scope", "").split() if existing else []
        missing = [s for s in api.scopes if s not in have]
        if not missing:
            continue
        lacking.append(f"consent: {api.api} lacks {' '.join(missing)}")
        if existing:  # add what is missing, keep what others granted
            writes.append(Call("PATCH", f"/oauth2PermissionGrants/{existing[0]['id']}",
                               {"scope": " ".join(have + missing)}, what=f"consent: add scopes for {api.api}"))
        else:
            writes.append(Call("POST", "/oauth2PermissionGrants", {
                "clientId": client, "consentType": "AllPrincipals", "resourceId": resource,
                "scope": " ".join(api.scopes)}, what=f"consent: grant {api.api}"))
    if not write:
        drift.extend(lacking)
    elif writes:
        graph.batch(writes, replicating=True)


def _resource(api: ApiPermissions, endpoints: Endpoints) -> str:
    # Graph scopes follow the cloud's Graph host; other APIs are named by their app ID.
    return endpoints.graph if api.app_id == MICROSOFT_GRAPH else api.app_id


class _AnswerKeepingSession(requests.Session):
    """msal's HTTP client, keeping the last answer's status and Retry-After (msal's result has neither)."""

    last_status = 0
    last_retry_after: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(*args, **kwargs)
        self.last_status = response.status_code
        retry_after = response.headers.get("Retry-After")
        self.last_retry_after = float(retry_after) if retry_after and retry_after.isdigit() else None
        return response


class _Tokens:
    """Tokens from the new app with its new secret (so they prove the secret too): the sync user's
    password sign-in, and the app's own client-credentials token."""

    def __init__(self, endpoints: Endpoints, deployed: Deployed, deadline: Deadline, *, wait_for_consent: bool):
        self.session = _AnswerKeepingSession()
        self.http_cache: dict[str, Any] = {}
        self.token_cache = msal.TokenCache()
        self.deployed = deployed
        self.deadline = deadline
        self.wait = wait_for_consent
        self.app = msal.ConfidentialClientApplication(
            deployed.text("clientId"), client_credential=deployed.text("clientSecret"),
            authority=endpoints.authority(deployed.directory_tenant_id), instance_discovery=False,
            http_client=self.session, http_cache=self.http_cache, token_cache=self.token_cache)

    def user_token(self, api: ApiPermissions, scopes: list[str]) -> str:
        return self.acquire(f"sign-in for {api.api}", lambda: self.app.acquire_token_by_username_password(
            self.deployed.text("userName"), self.deployed.text("password"), scopes=scopes))

    def app_token(self, scope: str, holds: Callable[[str], str | None]) -> str:
        """A client-credentials token; `holds` names what the token lacks (waited for while consent replicates)."""
        step = "application access"
        for attempt in itertools.count():
            token = self.acquire(step, lambda: self.app.acquire_token_for_client(scopes=[scope]))
            lacking = holds(token)
            if lacking is None:
                return token
            if not self.wait:
                raise StepFailedError(step, lacking)
            for cached in list(self.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                self.token_cache.remove_at(cached)  # or msal would hand out the same token again
            try:
                self.deadline.pause(attempt, f"{step}: {lacking}, waiting for the directory")
            except DeadlineExceededError:
                raise StepFailedError(step, lacking) from None
        raise AssertionError("unreachable")

    def acquire(self, step: str, call: Callable[[], dict[str, Any]]) -> str:
        last_code = 0
        try:
            for attempt in itertools.count():
                # msal replays a failed answer from its cache for a while; a retry must really go out.
                self.http_cache.clear()
                try:
                    result = call()
                except (requests.ConnectionError, requests.Timeout):
                    self.deadline.pause(attempt, f"{step}: connection failed")
                    continue
                except MsalServiceError:  # msal raises on 5xx token answers
                    self.deadline.pause(attempt, f"{step}: answered {self.session.last_status}",
                                        self.session.last_retry_after)
                    continue
                if "access_token" in result:
                    return str(result["access_token"])
                codes = [int(c) for c in result.get("error_codes") or []]
                last_code = codes[0] if codes else 0
                if self.session.last_status in RETRYABLE_STATUS:
                    self.deadline.pause(attempt, f"{step}: answered {self.session.last_status}",
                                        self.session.last_retry_after)
                elif self.wait and last_code in REPLICATION_CODES:
                    self.deadline.pause(attempt, f"{step}: AADSTS{last_code}, waiting for the directory")
                else:
                    raise StepFailedError(step, _advice(last_code, result))
        except DeadlineExceededError as late:
            raise StepFailedError(step, _advice(last_code, {}) if last_code else str(late)) from None
        raise AssertionError("unreachable")


def _advice(code: int, result: Mapping[str, Any]) -> str:
    if code in AADSTS_ADVICE:
        return f"AADSTS{code}: {AADSTS_ADVICE[code]}"
    first_line = (str(result.get("error_description", "")).splitlines() or [""])[0]
    return f"{result.get('error', 'sign-in failed')}: {first_line}"


def _check_licence_and_ownership(graph: Graph, deployed: Deployed) -> tuple[str | None, list[str]]:
    """The sync user's object ID, and what no longer holds of its licence and its ownership of the app."""
    me, owned = graph.batch([Call("GET", "/me?$select=id,assignedLicenses", what="licence check"),
                             Call("GET", "/me/ownedObjects?$select=id&$top=999", what="ownership check")])
    drift = []
    if not me.body.get("assignedLicenses"):
        drift.append("licence: the sync user has no licence: assign an Office 365 (E1 or higher) licence")
    # Objects the user may not read come back with only their id, which is all we match on.
    if deployed.application_object_id not in {o.get("id") for o in owned.body.get("value", [])}:
        drift.append("ownership: the sync user no longer owns the application: run pulumi up to restore it")
    return me.body.get("id"), drift


def _check_app_access(tokens: _Tokens, roles: Mapping[str, ApiPermissions], endpoints: Endpoints,
                      deadline: Deadline, sync_user_id: str | None) -> None:
    """Profile graph: the app's own token carries its application permissions and reads the sync user's presence."""
    def lacking(token: str) -> str | None:
        granted = _token_roles(token)
        missing = [r for r in roles if granted is not None and r not in granted]
        return (f"the app's token lacks {', '.join(missing)}: {AADSTS_ADVICE[65001]}") if missing else None

    token = tokens.app_token(f"{endpoints.graph}/.default", lacking)
    if sync_user_id is None:
        return  # the sync user's sign-in failed, which is reported already
    try:
        Graph(endpoints.graph, lambda: token, deadline).send(
            Call("GET", f"/users/{sync_user_id}/presence", what="presence read"))
    except GraphError as error:
        advice = {403: AADSTS_ADVICE[65001], 404: "the sync user has no Teams presence: give it a Teams licence"}
        raise StepFailedError("presence read", f"{error}; {advice.get(error.status, 'see Graph message')}") from None


def _token_roles(token: str) -> set[str] | None:
    """The `roles` claim of an Entra access token; None where the token cannot be read."""
    claims = token_claims(token)
    return None if claims is None else set(claims.get("roles", []))


def resource_hook(settings: Settings, known: Mapping[str, Any], wait_for: Sequence[Any]
                  ) -> Callable[[Any], Awaitable[None]]:
    """The after-create/after-update hook of the client secret Novus should hold.

    The engine runs a hook before it answers the hooked resource's registration (and waits for it with
    no timeout), so while it runs every Output of the secret, and of anything that depends on it, is
    unresolved: awaiting one would hang `pulumi up` for good. So the secret's own value and end date come
    from the hook's argument; `known` holds the other stack outputs, and `wait_for` the resources
    post-deploy relies on (consent, licence), none of which may depend on the secret.
    """
    import asyncio

    import pulumi

    async def hook(args: pulumi.ResourceHookArgs) -> None:
        await pulumi.Output.all(*(resource.urn for resource in wait_for)).future()
        outputs = dict(await pulumi.Output.from_input(known).future() or {})
        secret = dict(args.new_outputs or {})
        value = secret.get("value")
        value = await value.future() if isinstance(value, pulumi.Output) else value
        outputs["novus"] = {**outputs.get("novus", {}), "clientSecret": value}
        outputs["clientSecretEndDate"] = secret.get("endDate")
        deployed = Deployed.from_outputs(outputs)
        drift = await asyncio.to_thread(post_deploy, settings, deployed, check=False, now=datetime.now(UTC),
                                        say=pulumi.log.info)
        if drift:
            raise pulumi.RunError("post-deploy failed: " + "; ".join(drift))
        target = Path(f"novus-config.{pulumi.get_stack()}.json")
        if notice := secret_change_notice(target, deployed):
            pulumi.log.warn(f"post-deploy: {notice}")
        write_handover(target, deployed)
        for line in handover_table(deployed, show_secrets=False):
            pulumi.log.info(line)
        pulumi.log.info(f"post-deploy: wrote {target} (owner-only) with the Novus values")

    return hook


def secret_change_notice(path: Path, deployed: Deployed) -> str | None:
    """What to tell the admin when the hand-over file at `path` holds another client secret than now."""
    try:
        before = json.loads(path.read_text(encoding="utf-8")).get("clientSecret")
    except (OSError, ValueError, AttributeError):
        return None
    if before is None or before == deployed.text("clientSecret"):
        return None
    deadline = (f"before {deployed.previous_client_secret_end_date}, when the one Novus has stops working"
                if deployed.previous_client_secret_end_date else "now: the one Novus has was replaced")
    return f"the client secret changed: enter the new one on the Novus page {deadline}"


def write_handover(path: Path, deployed: Deployed) -> None:
    """Write the Novus values as JSON, readable by the owner only, even if the file existed."""
    data = json.dumps({k: deployed.text(k) for k, _ in NOVUS_FIELDS}, indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(data)


def handover_table(deployed: Deployed, *, show_secrets: bool) -> list[str]:
    width = max(len(label) for _, label in NOVUS_FIELDS)
    return [f"{label:<{width}}  {deployed.text(k) if show_secrets or k not in SECRET_FIELDS else '********'}"
            for k, label in NOVUS_FIELDS]
