"""A loopback HTTPS fake of the Entra ID token endpoints and the Microsoft Graph calls presencesync makes.

It speaks the real protocols (OIDC discovery, OAuth2 token requests with AADSTS error answers,
Graph JSON, `$batch`), so the real msal and requests run against it. It holds a small in-memory
directory, records every request, and can inject faults: status codes with Retry-After, dropped
connections, and objects that only become visible some seconds after a run starts (replication).
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import fake_arm
import fake_entra_objects
import fake_entra_policies
import trustme

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Graph takes at most 20 requests in one JSON batch (Microsoft Graph, "Combine multiple HTTP requests using JSON
# batching", learn.microsoft.com/graph/json-batching) and refuses more with 400.
BATCH_LIMIT = 20
_GUID = re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}")
AADSTS_TEXT = {
    70008: "The provided authorization code or refresh token has expired due to inactivity.",
    50034: "The user account does not exist in the directory.",
    50053: "The account is locked.",
    50055: "The password is expired.",
    50057: "The user account is disabled.",
    50076: "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
    50079: "The user is required to register for multi-factor authentication.",
    50126: "Error validating credentials due to invalid username or password.",
    53003: "Access has been blocked by Conditional Access policies.",
    65001: "The user or administrator has not consented to use the application.",
    700016: "Application was not found in the directory.",
    7000215: "Invalid client secret provided.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
}


@dataclass
class User:
    upn: str
    password: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    licensed: bool = True
    sign_in_error: int | None = None  # an AADSTS code every password sign-in gets
    availability: str = "Available"  # Teams presence
    # As the guide sets a sync user up (and the stack creates one): its password never expires. Graph's own
    # default is null, the tenant's policy then deciding.
    password_policies: str | None = "DisablePasswordExpiration"
    last_password_change: str = "2026-01-01T00:00:00Z"  # lastPasswordChangeDateTime
    enabled: bool = True  # accountEnabled
    groups: list[str] = field(default_factory=list)  # IDs of the groups it is in
    roles: list[str] = field(default_factory=list)  # template IDs of its Entra directory roles


@dataclass
class App:
    client_id: str
    secrets: set[str]
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = "PresenceSync"
    owners: set[str] = field(default_factory=set)
    public_client: bool = True
    end_date: str = "2100-12-31T00:00:00Z"
    first_party: bool = False  # Microsoft's own client (the Azure CLI): pre-consented, gets refresh tokens
    created: str = "2024-01-01T00:00:00Z"  # createdDateTime


@dataclass
class Fault:
    method: str
    path: str  # a regular expression searched in the request path
    status: int  # 0 drops the connection without an answer
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    batched: bool
    at: float


class Directory:
    """The fake tenant's state; everything the handler reads and writes."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.apps: dict[str, App] = {}  # client ID -> app
        self.service_principals: dict[str, dict[str, Any]] = {}  # app ID -> servicePrincipal JSON
        self.grants: dict[str, dict[str, Any]] = {}
        self.role_assignments: dict[str, dict[str, Any]] = {}  # appRoleAssignment JSON by ID
        self.issued_tokens: list[str] = []
        self.faults: list[Fault] = []
        self.hidden_until: dict[str, float] = {}  # app ID -> monotonic time its SP appears
        self.seen: list[Seen] = []
        self.token_requests: list[dict[str, str]] = []
        # What the Azure CLI manages (fake_entra_objects.py): application JSON by object ID, the domains.
        self.applications: dict[str, dict[str, Any]] = {}
        self.domains: list[str] = ["contoso.onmicrosoft.com"]
        self.password_validity: dict[str, int] = {}  # domain -> passwordValidityPeriodInDays (not set: null)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user principal name
        self.arm = fake_arm.Arm(tenant_id)  # Resource Manager, for the bootstrap script
        self.latency = 0.0  # seconds each answer is held back: a network's round trip, for the benchmark
        # Policies (fake_entra_policies.py): the tenant's default app management policy, custom ones by ID and
        # which application (object ID) each is assigned to, security defaults, Conditional Access.
        self.default_app_policy = fake_entra_policies.default_app_management_policy()
        self.app_policies: dict[str, dict[str, Any]] = {}
        self.policy_assignments: dict[str, str] = {}
        self.security_defaults = False
        self.ca_policies: list[dict[str, Any]] = []

    def add_resource_api(self, app_id: str, scopes: dict[str, str], roles: dict[str, str] | None = None) -> str:
        object_id = str(uuid.uuid4())
        self.service_principals[app_id] = {
            "id": object_id, "appId": app_id, "servicePrincipalNames": [app_id],
            "oauth2PermissionScopes": [{"value": v, "id": i, "type": "User"} for v, i in scopes.items()],
            "appRoles": [{"value": v, "id": i, "allowedMemberTypes": ["Application"]} for v, i in (roles or {}).items()]}
        return object_id

    def add_role_assignment(self, client_app_id: str, resource_app_id: str, role: str) -> dict[str, Any]:
        resource = self.service_principals[resource_app_id]
        role_id = next(r["id"] for r in resource["appRoles"] if r["value"] == role)
        assignment = {"id": str(uuid.uuid4()), "principalId": self.service_principals[client_app_id]["id"],
                      "resourceId": resource["id"], "appRoleId": role_id}
        self.role_assignments[assignment["id"]] = assignment
        return assignment

    def app_roles(self, client_app_id: str) -> list[str]:
        """The values of the app roles assigned to an app's service principal, as its tokens carry them."""
        client = self.service_principals.get(client_app_id, {}).get("id")
        names = {(sp["id"], r["id"]): r["value"] for sp in self.service_principals.values() for r in sp["appRoles"]}
        return sorted(names[(a["resourceId"], a["appRoleId"])] for a in self.role_assignments.values()
                      if a["principalId"] == client and (a["resourceId"], a["appRoleId"]) in names)

    def add_app(self, app: App, *, with_service_principal: bool = True) -> App:
        self.apps[app.client_id] = app
        if with_service_principal:
            self.service_principals[app.client_id] = {"id": str(uuid.uuid4()), "appId": app.client_id,
                                                      "servicePrincipalNames": [app.client_id],
                                                      "oauth2PermissionScopes": [], "appRoles": []}
        return app

    def add_grant(self, client_app_id: str, resource_app_id: str, scope: str) -> dict[str, Any]:
        grant = {"id": str(uuid.uuid4()), "clientId": self.service_principals[client_app_id]["id"],
                 "resourceId": self.service_principals[resource_app_id]["id"],
                 "consentType": "AllPrincipals", "principalId": None, "scope": scope}
        self.grants[grant["id"]] = grant
        return grant

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in ("POST", "PATCH", "DELETE") and s.path.startswith("/v1.0/")
                and s.path != "/v1.0/$batch"]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None


class FakeEntra:
    """Serves the directory over HTTPS on an address of its own in 127/8, so test runs side by side do not
    collide; `url` is both authority host and Graph endpoint, `arm_url` stands for Resource Manager (another
    origin, as the Azure CLI needs)."""

    def __init__(self, tmp: Path, tenant_id: str = "f2a33a3e-2d9b-4d2e-9a55-3c0e1a7b8c9d") -> None:
        self.directory = Directory(tenant_id)
        self.ca = trustme.CA()
        self.ca_path = tmp / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        handler = type("Handler", (_Handler,), {"directory": self.directory})
        self.address, self.realm = _realm_listener(handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(self.address).configure_cert(context)
        self.realm.socket = context.wrap_socket(self.realm.socket, server_side=True)
        self.server = _Server((self.address, 0), handler)
        self.arm = _Server((self.address, 0), handler)
        self.servers = (self.server, self.arm, self.realm)
        for server in self.servers:
            if server is not self.realm:
                server.socket = context.wrap_socket(server.socket, server_side=True)
            server.daemon_threads = True
            # A short poll interval: shutdown() waits up to one poll, and every test closes a fake.
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"https://{self.address}:{self.server.server_address[1]}"
        self.arm_url = f"https://{self.address}:{self.arm.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The environment that points presencesync (and requests) at this fake."""
        return {"PRESENCESYNC_AUTHORITY_HOST": self.url, "PRESENCESYNC_GRAPH_ENDPOINT": self.url,
                "REQUESTS_CA_BUNDLE": str(self.ca_path)}

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a client opening more connections at once (several sync users
    # signing in side by side) would see some connects retried a second later, which Entra's front doors never
    # cause. A deeper backlog keeps the fake from adding round trips of its own.
    request_queue_size = 128


class RealmPortUnavailableError(Exception):
    """Port 443 cannot be bound here (msal asks the user realm there): sign-in tests cannot run."""


def _realm_listener(handler: type[BaseHTTPRequestHandler]) -> tuple[str, ThreadingHTTPServer]:
    """A free address in 127/8 with a listener on its port 443: msal asks
    https://<authority host>/common/userrealm/... on port 443, whatever the authority's port."""
    for _ in range(20):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        try:
            return address, _Server((address, 443), handler)
        except PermissionError:
            raise RealmPortUnavailableError("port 443 needs root (or CAP_NET_BIND_SERVICE)") from None
        except OSError:  # in use by another run on the same address: take another
            continue
    raise RealmPortUnavailableError("no free address in 127/8 with port 443")


class _Handler(BaseHTTPRequestHandler):
    directory: Directory
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        d = self.directory
        d.seen.append(Seen(method, path, False, time.monotonic()))
        fault = d.take_fault(method, path)
        if fault is not None and fault.status == 0:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault is not None:
            return self._reply(fault.status, fault.body or _graph_error("Fault", "injected"), fault.headers)
        if "/oauth2/v2.0/token" in path:
            return self._reply(*_token(d, parse_qs(raw.decode())))
        if path.startswith("/common/userrealm/"):
            return self._reply(200, {"ver": "1.0", "account_type": "Managed", "domain_name": path.split("@")[-1],
                                     "cloud_instance_name": "microsoftonline.com"})
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            return self._reply(200, _openid_configuration(f"https://{self.headers['Host']}", path))
        if path.startswith(("/subscriptions", "/tenants")):  # Azure Resource Manager (fake_arm.py)
            if _caller(d, self.headers.get("Authorization", "")) is None:
                return self._reply(401, {"error": {"code": "AuthenticationFailed", "message": "No token."}})
            return self._reply(*fake_arm.serve(d.arm, method, self.path, json.loads(raw) if raw else None))
        if path.startswith("/v1.0/"):
            caller = _caller(d, self.headers.get("Authorization", ""))
            if caller is None:
                return self._reply(401, _graph_error("InvalidAuthenticationToken", "Access token is empty."))
            body = json.loads(raw) if raw else None
            if path == "/v1.0/$batch" and method == "POST":
                if len(body["requests"]) > BATCH_LIMIT:  # the fake's own wording; the limit is Graph's
                    return self._reply(400, _graph_error("BadRequest", f"A $batch takes at most {BATCH_LIMIT} "
                                                         "requests."))
                return self._reply(200, {"responses": [_batch_item(d, caller, item) for item in body["requests"]]})
            status, answer = _graph(d, caller, method, self.path[len("/v1.0"):], body, dict(self.headers))
            return self._reply(status, answer, {"request-id": str(uuid.uuid4())})
        self._reply(404, {"error": "not_found"})

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        if self.directory.latency:
            time.sleep(self.directory.latency)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _openid_configuration(base: str, path: str) -> dict[str, Any]:
    tenant = path.split("/")[1]
    return {"issuer": f"{base}/{tenant}/v2.0", "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode"}


def _aadsts(code: int, error: str = "invalid_grant") -> tuple[int, dict[str, Any]]:
    return 400 if code != 7000215 else 401, {
        "error": error, "error_codes": [code], "trace_id": str(uuid.uuid4()),
        "error_description": f"AADSTS{code}: {AADSTS_TEXT[code]} Trace ID: {uuid.uuid4()}"}


def _token(d: Directory, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    field_ = {k: v[0] for k, v in form.items()}
    d.token_requests.append({k: v for k, v in field_.items() if k in ("grant_type", "client_id", "scope", "username")})
    with d.lock:
        app = d.apps.get(field_.get("client_id", ""))
        if app is None or (app.client_id in d.hidden_until and time.monotonic() < d.hidden_until[app.client_id]):
            return _aadsts(700016, "unauthorized_client")
        if "client_secret" in field_ and field_["client_secret"] not in app.secrets:
            return _aadsts(7000215, "invalid_client")
        if field_.get("grant_type") == "client_credentials":
            if field_.get("scope", "").rpartition("/")[2] != ".default":
                return 400, {"error": "invalid_scope", "error_codes": [1002012],
                             "error_description": "AADSTS1002012: The provided value for scope is not valid."}
            return 200, _token_answer(d, f"app:{app.client_id}", d.app_roles(app.client_id),
                                      oid=d.service_principals.get(app.client_id, {}).get("id"))
        if field_.get("grant_type") == "refresh_token" and app.first_party:
            upn = d.refresh_tokens.get(field_.get("refresh_token", ""))
            if upn is None:
                return _aadsts(70008)
            return 200, _first_party_answer(d, app, d.users[upn], field_.get("scope", ""))
        if field_.get("grant_type") != "password":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: unsupported"}
        if "client_secret" not in field_ and not app.public_client:
            return _aadsts(7000218, "invalid_client")
        user = d.users.get(field_.get("username", "").lower())
        if user is None:
            return _aadsts(50034)
        if field_.get("password") != user.password:
            return _aadsts(50126)
        if user.sign_in_error:
            return _aadsts(user.sign_in_error)
        if app.first_party:
            return 200, _first_party_answer(d, app, user, field_.get("scope", ""))
        if not _consented(d, app, field_.get("scope", "")):
            return _aadsts(65001)
        return 200, _token_answer(d, f"user:{user.upn}", oid=user.id, scope=field_.get("scope", ""))


def _first_party_answer(d: Directory, app: App, user: User, scope: str) -> dict[str, Any]:
    """What Entra answers a first-party public client (the Azure CLI): an access token, and for msal's
    account cache an id token and client_info, and a refresh token for the other resources' tokens."""
    answer = _token_answer(d, f"user:{user.upn}", oid=user.id, scope=scope)
    now = int(time.time())
    id_claims = {"aud": app.client_id, "iss": f"https://login.microsoftonline.com/{d.tenant_id}/v2.0", "iat": now,
                 "nbf": now, "exp": now + 3600, "oid": user.id, "sub": user.id, "tid": d.tenant_id,
                 "preferred_username": user.upn, "name": user.upn, "ver": "2.0"}
    refresh = f"refresh-{uuid.uuid4()}"
    d.refresh_tokens[refresh] = user.upn
    return {**answer, "scope": scope, "refresh_token": refresh,
            "id_token": ".".join(_b64(p) for p in ({"typ": "JWT", "alg": "RS256"}, id_claims)) + ".c2ln",
            "client_info": _b64({"uid": user.id, "utid": d.tenant_id})}


def _consented(d: Directory, app: App, scope: str) -> bool:
    """Whether AllPrincipals grants cover every requested scope (`{resource}/{value}`)."""
    client_sp = d.service_principals.get(app.client_id)
    if client_sp is None:
        return False
    for wanted in scope.split():
        if wanted in ("openid", "profile", "offline_access"):
            continue
        resource, _, value = wanted.rpartition("/")
        resource_sp = d.service_principals.get(resource if _GUID.fullmatch(resource) else GRAPH_APP_ID)
        granted = [g for g in d.grants.values()
                   if resource_sp and g["clientId"] == client_sp["id"] and g["resourceId"] == resource_sp["id"]]
        if not granted or (value != ".default" and value not in {s for g in granted for s in g["scope"].split()}):
            return False
    return True


def _token_answer(d: Directory, subject: str, roles: list[str] | None = None, oid: str | None = None,
                  scope: str | None = None) -> dict[str, Any]:
    """A JWT-shaped access token, as Entra issues for Graph (unsigned here: nothing verifies it). Its
    `oid` is the caller's object ID: the user's, or for an app the object ID of its service principal; a
    delegated token carries the granted scopes in `scp` (only user tokens do: Entra's access token claims)."""
    claims: dict[str, Any] = {"sub": subject, "tid": d.tenant_id, "jti": str(uuid.uuid4())}
    if scope is not None:
        claims["scp"] = " ".join(s.rpartition("/")[2] for s in scope.split() if "/" in s) or "User.Read"
    if oid:
        claims["oid"] = oid
    if roles:
        claims["roles"] = roles
    token = ".".join(_b64(part) for part in ({"typ": "JWT", "alg": "RS256"}, claims)) + ".c2lnbmF0dXJl"
    d.issued_tokens.append(token)
    return {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _caller(d: Directory, authorization: str) -> dict[str, Any] | None:
    """The claims of a bearer token this fake issued, or None."""
    token = authorization.removeprefix("Bearer ")
    if token not in d.issued_tokens:
        return None
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "innerError": {"request-id": str(uuid.uuid4()), "date": "2026-11-26T00:00:00"}}}


def _batch_item(d: Directory, caller: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    path = urlsplit(item["url"]).path
    d.seen.append(Seen(item["method"], "/v1.0" + path, True, time.monotonic()))
    fault = d.take_fault(item["method"], "/v1.0" + path)
    if fault is not None and fault.status:
        return {"id": item["id"], "status": fault.status, "headers": fault.headers,
                "body": fault.body or _graph_error("Fault", "injected")}
    status, body = _graph(d, caller, item["method"], item["url"], item.get("body"), item.get("headers"))
    return {"id": item["id"], "status": status, "body": body, "headers": {"Content-Type": "application/json"}}


def _graph(d: Directory, claims: dict[str, Any], method: str, url: str, body: Any,
           headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    caller = claims["sub"]
    parts = urlsplit(url)
    path, query = unquote(parts.path), parse_qs(parts.query)
    with d.lock:
        if path == "/users" and method == "GET" and "assignedPlans/any(" in query.get("$filter", [""])[0]:
            # An advanced query: Graph refuses it without ConsistencyLevel: eventual and $count=true.
            consistency = {k.lower(): v for k, v in (headers or {}).items()}.get("consistencylevel")
            if consistency != "eventual" or query.get("$count") != ["true"]:
                return 400, _graph_error("Request_UnsupportedQuery", "Unsupported Query.")
            # The filter's plan service, matched against the plans the fake lists for each user.
            wanted = re.findall(r"a/service eq '([^']+)'", query["$filter"][0])
            found = [u for u in d.users.values() if u.enabled and any(
                p["service"] in wanted and p["capabilityStatus"] == "Enabled"
                for p in fake_entra_objects.user_json(u)["assignedPlans"])]
            return 200, {"@odata.count": len(found),
                         "value": [{"id": u.id} for u in found[:int(query.get("$top", ["100"])[0])]]}
        if match := re.fullmatch(r"/servicePrincipals\(appId='([^']+)'\)", path):
            app_id = match.group(1)
            if app_id not in d.service_principals or time.monotonic() < d.hidden_until.get(app_id, 0):
                return 404, _graph_error("Request_ResourceNotFound",
                                         f"Resource '{app_id}' does not exist or one of its queried "
                                         "reference-property objects are not present.")
            return 200, d.service_principals[app_id]
        if path == "/oauth2PermissionGrants" and method == "GET":
            wanted = re.findall(r"(\w+) eq '([^']+)'", query.get("$filter", [""])[0])
            found = [g for g in d.grants.values() if all(str(g.get(k)) == v for k, v in wanted)]
            return 200, {"value": found}
        if path == "/oauth2PermissionGrants" and method == "POST":
            if any(g["clientId"] == body["clientId"] and g["resourceId"] == body["resourceId"]
                   and g["consentType"] == body["consentType"] for g in d.grants.values()):
                return 409, _graph_error("Request_MultipleObjectsWithSameKeyValue",
                                         "Permission entry already exists.")
            grant = {**body, "id": str(uuid.uuid4())}
            d.grants[grant["id"]] = grant
            return 201, grant
        if (match := re.fullmatch(r"/oauth2PermissionGrants/([^/]+)", path)) and method == "PATCH":
            if match.group(1) not in d.grants:
                return 404, _graph_error("Request_ResourceNotFound", "Grant does not exist.")
            d.grants[match.group(1)].update(body)
            return 204, {}
        if match := re.fullmatch(r"/servicePrincipals/([^/]+)/appRoleAssignments", path):
            client = match.group(1)
            if method == "GET":
                return 200, {"value": [a for a in d.role_assignments.values() if a["principalId"] == client]}
            if any(a["principalId"] == client and a["resourceId"] == body["resourceId"]
                   and a["appRoleId"] == body["appRoleId"] for a in d.role_assignments.values()):
                return 409, _graph_error("Request_BadRequest",
                                         "Permission being assigned already exists on the object")
            assignment = {**body, "id": str(uuid.uuid4())}
            d.role_assignments[assignment["id"]] = assignment
            return 201, assignment
        if match := re.fullmatch(r"/users/([^/]+)/presence", path):
            if not {"Presence.Read.All", "Presence.ReadWrite.All"} & set(claims.get("roles", [])):
                return 403, _graph_error("Forbidden", "Insufficient privileges to complete the operation.")
            found = [u for u in d.users.values() if u.id == match.group(1)]
            if not found:
                return 404, _graph_error("NotFound", "The requested user is not found.")
            return 200, {"id": found[0].id, "availability": found[0].availability, "activity": found[0].availability}
        if path.startswith("/me") and not caller.startswith("user:"):
            return 400, _graph_error("BadRequest", "/me request is only valid with delegated authentication flow.")
        user = d.users.get(caller.removeprefix("user:").lower())
        if path == "/me" and user:
            return 200, {"id": user.id, "assignedLicenses": [{"skuId": str(uuid.uuid4()), "disabledPlans": []}]
                         if user.licensed else [], "passwordPolicies": user.password_policies,
                         "lastPasswordChangeDateTime": user.last_password_change}
        if path == "/me/ownedObjects" and user:
            owned = [{"@odata.type": "#microsoft.graph.application", "id": a.object_id}
                     for a in d.apps.values() if user.id in a.owners]
            return 200, {"value": owned}
        if path == "/applications" and method == "GET" and "displayName eq" in query.get("$filter", [""])[0]:
            name = re.findall(r"displayName eq '([^']+)'", query.get("$filter", [""])[0])
            apps = [a for a in d.apps.values() if not name or a.display_name == name[0]]
            return 200, {"value": [{"id": a.object_id, "appId": a.client_id, "displayName": a.display_name,
                                    "createdDateTime": a.created,
                                    "passwordCredentials": [{"keyId": str(uuid.uuid5(uuid.NAMESPACE_OID, secret)),
                                                             "displayName": "made by hand", "endDateTime": a.end_date}
                                                            for secret in sorted(a.secrets)]}
                                   for a in apps]}
        answer = fake_entra_policies.serve(d, claims, method, path, query, body) or \
            fake_entra_objects.serve(d, claims, method, path, query, body)
    return answer or (404, _graph_error("Request_ResourceNotFound", f"{method} {path} is not served by the fake"))
