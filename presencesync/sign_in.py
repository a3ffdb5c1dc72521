"""Proof that Novus can sign in: the sync user's password sign-in to the new app with its new secret
(which proves the secret and the grants), its licence and ownership, and with profile graph the app's
own token and presence read. Token requests are retried within the deadline; msal's discovery and user
realm answers are kept, its token answers are not (it would replay a failure to the retry)."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from presencesync.clouds import Endpoints
from presencesync.credentials import forget_token_answers, token_claims
from presencesync.errors import StepFailedError
from presencesync.graph import RETRYABLE_STATUS, Call, Deadline, DeadlineExceededError, Graph, GraphError
from presencesync.permissions import MICROSOFT_GRAPH, ApiPermissions
from presencesync.stack_outputs import Deployed

REPLICATION_CODES = frozenset({700016, 7000215, 65001})


AADSTS_ADVICE = {
    50076: "the sync user is asked for MFA: exclude it from MFA (Conditional Access, per-user MFA, security defaults)",
    50079: "the sync user must register for MFA: exclude it from MFA (Conditional Access, per-user MFA, "
           "security defaults)",
    53003: "Conditional Access blocks the sync user: find the policy in the Entra sign-in logs and exclude the user",
    65001: "admin consent is missing: grant it (consent: resource or hook) or open the admin-consent URL",
    7000218: "the app is not a public client and no secret was sent: set presencesync:publicClient to true",
    50126: "wrong user name or password: correct presencesync:syncUserPassword or syncUserPasswords (or the user's "
           "password)",
    50034: "the sync user does not exist in this tenant: check presencesync:syncUser.userPrincipalName",
    50053: "the sync user is locked out: unlock it in the Entra admin center",
    50055: "the sync user's password has expired: reset it and set it never to expire",
    50057: "the sync user is disabled: enable the account",
    700016: "the application is not in this tenant: run pulumi up, or check the stack's outputs",
    7000215: "the client secret is wrong or expired: run pulumi up for a new secret, then update Novus",
}


def resource_of(api: ApiPermissions, endpoints: Endpoints) -> str:
    # Graph scopes follow the cloud's Graph host; other APIs are named by their app ID.
    return endpoints.graph if api.app_id == MICROSOFT_GRAPH else api.app_id


class _AnswerKeepingSession(requests.Session):
    """msal's HTTP client, keeping each thread's last answer's status and Retry-After (msal's result has
    neither); sign-ins run side by side, so per thread."""

    def __init__(self) -> None:
        super().__init__()
        self._last = threading.local()

    @property
    def last_status(self) -> int:
        return int(getattr(self._last, "status", 0))

    @property
    def last_retry_after(self) -> float | None:
        return getattr(self._last, "retry_after", None)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(*args, **kwargs)
        self._last.status = response.status_code
        retry_after = response.headers.get("Retry-After")
        self._last.retry_after = float(retry_after) if retry_after and retry_after.isdigit() else None
        return response


class Tokens:
    """Tokens from the new app with its new secret (so they prove the secret too): the sync user's
    password sign-in, and the app's own client-credentials token. Creating it reads the authority's
    discovery document, which `http_cache` then holds for others to share."""

    def __init__(self, endpoints: Endpoints, deployed: Deployed, deadline: Deadline, *, wait_for_consent: bool):
        self.session = _AnswerKeepingSession()
        self.http_cache: dict[str, Any] = {}
        self.token_cache = msal.TokenCache()
        self.deployed = deployed
        self.deadline = deadline
        self.wait = wait_for_consent
        authority = endpoints.authority(deployed.directory_tenant_id)
        try:  # msal reads the authority's discovery document here
            self.app = msal.ConfidentialClientApplication(
                deployed.text("clientId"), client_credential=deployed.text("clientSecret"), authority=authority,
                instance_discovery=False, http_client=self.session, http_cache=self.http_cache,
                token_cache=self.token_cache)
        except (requests.RequestException, ValueError) as error:
            raise StepFailedError("sign-in", f"cannot read the sign-in endpoint {authority} ({type(error).__name__}); "
                                  "check the network, and directoryTenantId in the stack outputs") from None

    def warm_up(self, user_name: str) -> None:
        """Ask a sync user's realm now (msal keeps the answer), beside other work: the password
        sign-in asks it first. A failure here is left to the sign-in to report."""
        with contextlib.suppress(requests.RequestException, ValueError):
            self.app.authority.user_realm_discovery(user_name)

    def user_token(self, step: str, scopes: list[str], user_name: str, password: str) -> str:
        return self.acquire(step, lambda: self.app.acquire_token_by_username_password(
            user_name, password, scopes=scopes))

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
                forget_token_answers(self.http_cache)
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


def check_licence_and_ownership(graph: Graph, deployed: Deployed, user_name: str
                                ) -> tuple[dict[str, Any], list[str]]:
    """What the sync user reads of itself (its object ID, password policies and last password change, in the
    same round trip), and what no longer holds of its licence and its ownership of the app."""
    me, owned = graph.batch([
        Call("GET", "/me?$select=id,assignedLicenses,passwordPolicies,lastPasswordChangeDateTime",
             what="licence check"),
        Call("GET", "/me/ownedObjects?$select=id&$top=999", what="ownership check")])
    drift = []
    who = f"the sync user {user_name}" if len(deployed.sync_users) > 1 else "the sync user"
    if not me.body.get("assignedLicenses"):
        drift.append(f"licence: {who} has no licence: assign an Office 365 (E1 or higher) licence")
    # Objects the user may not read come back with only their id, which is all we match on.
    if deployed.application_object_id not in {o.get("id") for o in owned.body.get("value", [])}:
        drift.append(f"ownership: {who} no longer owns the application: run pulumi up to restore it")
    return me.body, drift


def check_app_access(tokens: Tokens, roles: Mapping[str, ApiPermissions], endpoints: Endpoints,
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
