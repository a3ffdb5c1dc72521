"""A small Microsoft Graph client: bearer tokens, retries within one deadline, and `$batch`.

Retried: 429 (after its Retry-After), 5xx, dropped connections, and, where the caller expects objects
that were just created, Graph's replication-delay answers (404, or 400 "does not exist or one of its
queried reference-property objects"). Anything else fails at once with Graph's code, message and
request-id. Tokens and request bodies are never logged.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from presencesync.errors import PresenceSyncError

log = logging.getLogger("presencesync.graph")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REPLICATION_HINT = "does not exist or one of its queried reference-property objects"
# Graph takes at most 20 requests in one $batch ("Combine multiple HTTP requests using JSON batching").
BATCH_LIMIT = 20


class GraphError(PresenceSyncError):
    def __init__(self, status: int, code: str, message: str, request_id: str, what: str) -> None:
        super().__init__(f"{what}: Graph answered {status} {code}: {message} (request-id {request_id or 'none'})")
        self.status = status
        self.code = code


class TokenUnavailableError(Exception):
    """The token endpoint answered 429/5xx; retried like Graph's own answers, within the deadline."""


class DeadlineExceededError(PresenceSyncError):
    """The overall deadline passed while an answer was still being retried."""


@dataclass
class Deadline:
    """One overall time budget shared by every retry of a run, with capped, jittered backoff."""

    seconds: float
    base: float = 0.25
    # Waits for the directory (replication) end within a second of its consistency; throttling says how
    # long to wait itself (Retry-After), and the deadline bounds the number of tries.
    cap: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def pause(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        delay = retry_after if retry_after is not None else \
            min(self.cap, self.base * 2 ** attempt) * (0.5 + random.random() / 2)  # noqa: S311 (jitter)
        if delay > self.remaining():
            raise DeadlineExceededError(f"{reason}, still after {self.seconds:.0f} s; "
                                   "raise presencesync:postDeployTimeout or try again later")
        log.info("retrying in %.1f s: %s", delay, reason)
        self.sleep(delay)


@dataclass(frozen=True)
class Call:
    """One Graph request; `url` is relative to the version root, e.g. /applications/{id}."""

    method: str
    url: str
    body: dict[str, Any] | None = None
    what: str = ""  # names the step in errors
    headers: dict[str, str] | None = None  # e.g. ConsistencyLevel: eventual for an advanced query
    once: bool = False  # never resent (a resource throttled per tenant with no Retry-After): read() answers as is


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class Graph:
    def __init__(self, endpoint: str, token: Callable[[], str], deadline: Deadline) -> None:
        self.root = f"{endpoint}/v1.0"
        self.token = token
        self.deadline = deadline
        self._local = threading.local()  # a requests.Session per thread: $batch chunks go out side by side

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        session: requests.Session = self._local.session
        return session

    def send(self, call: Call, *, replicating: bool = False) -> Answer:
        """Send one call, retrying what is retryable; `replicating` also retries 404s and
        reference-not-found 400s, for objects created moments ago."""
        for attempt in itertools.count():
            try:
                response = self._http(call.method, call.url, call.body, call.headers)
            except (requests.ConnectionError, requests.Timeout, TokenUnavailableError) as error:
                self.deadline.pause(attempt, f"{call.what or call.url}: connection failed ({type(error).__name__})")
                continue
            answer = Answer(response.status_code, _json(response))
            if _retryable(answer, replicating):
                self.deadline.pause(attempt, f"{call.what or call.url}: Graph answered {answer.status}",
                                    _retry_after(response.headers.get("Retry-After")))
                continue
            if answer.status >= 400:
                raise _error(answer, response.headers, call)
            return answer
        raise AssertionError("unreachable")

    def batch(self, calls: list[Call], *, replicating: bool = False) -> list[Answer]:
        """Send calls through `$batch` (in chunks of 20), resending only the ones that must be retried."""
        if len(calls) == 1:  # one request needs no envelope
            return [self.send(calls[0], replicating=replicating)]
        answers: dict[int, Answer] = {}
        pending = list(range(len(calls)))
        for attempt in itertools.count():
            answered, retry, retry_after = self._round(calls, pending, lambda _, a: _retryable(a, replicating))
            for index, (answer, headers) in answered.items():
                if index not in retry and answer.status >= 400:
                    raise _error(answer, headers, calls[index])
                answers[index] = answer
            if not retry:
                return [answers[i] for i in range(len(calls))]
            pending = retry
            self.deadline.pause(attempt, f"{len(retry)} of the batched requests were not answered yet",
                                retry_after)
        raise AssertionError("unreachable")

    def read(self, calls: list[Call]) -> list[Answer]:
        """Read through `$batch` (in chunks of 20) and answer every call, failures included, for the caller
        to report one by one; 429/5xx are resent within the deadline, except calls marked `once`."""
        answers: dict[int, Answer] = {}
        pending = list(range(len(calls)))
        for attempt in itertools.count():
            answered, retry, retry_after = self._round(
                calls, pending, lambda i, a: _retryable(a, False) and not calls[i].once)
            answers.update({index: answer for index, (answer, _) in answered.items()})
            if not retry:
                return [answers[i] for i in range(len(calls))]
            pending = retry
            try:
                self.deadline.pause(attempt, f"{len(retry)} of the batched reads were not answered yet", retry_after)
            except DeadlineExceededError:
                return [answers[i] for i in range(len(calls))]  # the caller reports what stayed unanswered
        raise AssertionError("unreachable")

    def _round(self, calls: list[Call], pending: list[int], resend: Callable[[int, Answer], bool]
               ) -> tuple[dict[int, tuple[Answer, Mapping[str, str]]], list[int], float | None]:
        """One round of envelopes for the pending calls: each answer with its headers (in the order Graph
        gave them), the calls `resend` says to send again (sorted), and the longest Retry-After among those."""
        answered: dict[int, tuple[Answer, Mapping[str, str]]] = {}
        retry: list[int] = []
        retry_after: float | None = None
        for outer in self._batches(calls, pending):
            for item in outer.body.get("responses", []):
                index = int(item["id"])
                answer, headers = Answer(int(item["status"]), item.get("body") or {}), item.get("headers") or {}
                answered[index] = (answer, headers)
                if resend(index, answer):
                    retry.append(index)
                    hint = _retry_after(headers.get("Retry-After"))
                    retry_after = max(retry_after or 0.0, hint) if hint is not None else retry_after
        return answered, sorted(retry), retry_after

    def _batches(self, calls: list[Call], pending: list[int]) -> list[Answer]:
        """Send the pending calls in `$batch` envelopes of at most 20, side by side: more calls cost no more
        sequential round trips, only more envelopes."""
        chunks = [pending[at:at + BATCH_LIMIT] for at in range(0, len(pending), BATCH_LIMIT)]
        envelopes = [Call("POST", "/$batch", {"requests": [_batch_item(i, calls[i]) for i in chunk]}, what="$batch")
                     for chunk in chunks]
        if len(envelopes) == 1:
            return [self.send(envelopes[0])]
        with ThreadPoolExecutor(max_workers=len(envelopes)) as pool:
            return list(pool.map(self.send, envelopes))

    def _http(self, method: str, url: str, body: dict[str, Any] | None,
              headers: dict[str, str] | None = None) -> requests.Response:
        timeout = max(1.0, min(30.0, self.deadline.remaining()))
        response = self.session.request(method, self.root + url, json=body, timeout=timeout, headers={
            **(headers or {}), "Authorization": f"Bearer {self.token()}", "Accept": "application/json"})
        log.debug("%s %s -> %s", method, url, response.status_code)
        return response


def _batch_item(index: int, call: Call) -> dict[str, Any]:
    item: dict[str, Any] = {"id": str(index), "method": call.method, "url": call.url}
    if call.body is not None:
        item["body"] = call.body
        item["headers"] = {"Content-Type": "application/json"}
    if call.headers:
        item["headers"] = {**item.get("headers", {}), **call.headers}
    return item


def _retryable(answer: Answer, replicating: bool) -> bool:
    if answer.status in RETRYABLE_STATUS:
        return True
    if not replicating:
        return False
    message = str(answer.body.get("error", {}).get("message", ""))
    return answer.status == 404 or (answer.status == 400 and REPLICATION_HINT in message)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(answer: Answer, headers: Any, call: Call) -> GraphError:
    error = answer.body.get("error") or {}
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = headers.get("request-id") or inner.get("request-id") or ""
    return GraphError(answer.status, str(error.get("code", "unknown")), str(error.get("message", "")),
                      str(request_id), call.what or f"{call.method} {call.url}")


def admin_consent_grants(client: str) -> str:
    """The Graph query for a client service principal's admin-consent (AllPrincipals) grants."""
    literal = client.replace("'", "''")  # OData doubles a quote inside a string literal
    return "/oauth2PermissionGrants?$filter=" + quote(f"clientId eq '{literal}' and consentType eq 'AllPrincipals'")


# What the preflight reads (Microsoft Graph v1.0; each page names the permission it needs).
DEFAULT_APP_MANAGEMENT_POLICY = "/policies/defaultAppManagementPolicy"  # tenantAppManagementPolicy: Get
SECURITY_DEFAULTS = "/policies/identitySecurityDefaultsEnforcementPolicy"  # identitySecurityDefaults...: Get
CONDITIONAL_ACCESS_POLICIES = "/identity/conditionalAccess/policies"  # conditionalAccessRoot: List policies
MY_MEMBERSHIPS = "/me/transitiveMemberOf?$select=id,displayName,roleTemplateId&$top=999"  # groups and roles


def service_principal(app_id: str, fields: str) -> str:
    return f"/servicePrincipals(appId='{app_id}')?$select={fields}"


def app_role_assignments(service_principal_id: str) -> str:
    """The app roles assigned to a service principal (what a client-credentials token carries)."""
    return f"/servicePrincipals/{service_principal_id}/appRoleAssignments"


def application(object_id: str) -> str:
    return f"/applications/{object_id}?$select=id,appId,displayName,createdDateTime"


def app_management_policies(object_id: str) -> str:
    """The appManagementPolicy assigned to an application (at most one), which overrides the tenant's default."""
    return f"/applications/{object_id}/appManagementPolicies"


def applications_named(display_name: str) -> str:
    name = quote(f"displayName eq '{display_name.replace(chr(39), chr(39) * 2)}'")
    return f"/applications?$filter={name}&$select=id,appId,displayName,createdDateTime"


def user(user_principal_name: str, fields: str) -> str:
    return f"/users/{quote(user_principal_name, safe='@')}?$select={fields}"


def memberships(user_principal_name: str) -> str:
    """A user's groups and directory roles, direct and through groups."""
    return f"/users/{quote(user_principal_name, safe='@')}/transitiveMemberOf?$select=id&$top=999"
