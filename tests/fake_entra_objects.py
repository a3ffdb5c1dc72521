"""The directory objects the Azure CLI's `az ad` commands manage, as Microsoft Graph v1.0 serves them:
applications (with owners and passwords), service principals, users and domains. fake_entra.py routes
Graph calls here that its own routes do not serve.

Modelled on what az 2.91 sends (azure-cli role/_msgrpah/_graph_client.py and role/custom.py), including
an application's federated identity credentials (`application_federated_identity_credential_*`): filters
`startswith(displayName,'X')`, `appId eq 'X'` and `servicePrincipalNames/any(c:c eq 'X')`; owners added
by `POST .../owners/$ref` with an `@odata.id`; `addPassword` returning `secretText`. Graph's own
answers where az relies on them: 409 for a second service principal of one app, 400 for an owner
reference that exists.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import fake_entra_policies

Answer = tuple[int, dict[str, Any]]


def serve(d: Any, claims: dict[str, Any], method: str, path: str, query: dict[str, list[str]], body: Any
          ) -> Answer | None:
    """Graph's answer to one call, or None when this module does not serve the path."""
    filter_ = query.get("$filter", [""])[0]
    # Graph's path segments are case-insensitive (az calls /oAuth2PermissionGrants/{id}).
    path = re.sub(r"^/oauth2permissiongrants", "/oauth2PermissionGrants", path, flags=re.IGNORECASE)
    if path == "/applications":
        if method == "POST":
            return 201, _new_application(d, body or {}, claims.get("oid"))
        return 200, {"value": [a for a in d.applications.values() if _matches(a, filter_)]}
    if match := re.fullmatch(r"/applications/([^/]+)(/.*)?", path):
        app = d.applications.get(match.group(1))
        if app is None:
            return 404, _error("Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist.")
        return _application_part(d, app, match.group(2) or "", method, body)
    if path == "/servicePrincipals":
        if method == "POST":
            return _new_service_principal(d, body or {})
        return 200, {"value": [sp for sp in d.service_principals.values() if _matches(sp, filter_)]}
    if match := re.fullmatch(r"/servicePrincipals/([^/]+)", path):
        found = [sp for sp in d.service_principals.values() if sp["id"] == match.group(1)]
        return (200, found[0]) if found else (404, _error("Request_ResourceNotFound", "No such service principal."))
    if (match := re.fullmatch(r"/oauth2PermissionGrants/([^/]+)", path)) and method == "DELETE":
        return (204, {}) if d.grants.pop(match.group(1), None) else (404, _error("Request_ResourceNotFound", "-"))
    if path == "/users" and method == "POST":
        return _new_user(d, body or {})
    if match := re.fullmatch(r"/users/([^/]+)", path):
        user = _user(d, match.group(1))
        if user is None:
            return 404, _error("Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                               "its queried reference-property objects are not present.")
        return 200, _user_json(user)
    if match := re.fullmatch(r"/directoryObjects/([^/]+)", path):
        user = _user(d, match.group(1))
        return (200, _user_json(user)) if user else (404, _error("Request_ResourceNotFound", "No such object."))
    if path == "/domains":
        return 200, {"value": [{"id": domain, "isDefault": i == 0, "isVerified": True}
                               for i, domain in enumerate(d.domains)]}
    return None


def _application_part(d: Any, app: dict[str, Any], part: str, method: str, body: Any) -> Answer:
    if part == "" and method == "GET":
        return 200, app
    if part == "" and method == "PATCH":
        app.update(body or {})
        return 204, {}
    if part == "/owners" and method == "GET":
        return 200, {"value": [_user_json(u) for u in d.users.values() if u.id in app["_owners"]]}
    if part == "/owners/$ref" and method == "POST":
        owner = str((body or {}).get("@odata.id", "")).rsplit("/", 1)[-1]
        if owner in app["_owners"]:
            return 400, _error("Request_BadRequest", "One or more added object references already exist for the "
                               "following modified properties: 'owners'.")
        app["_owners"].append(owner)
        return 204, {}
    if part.startswith("/federatedIdentityCredentials"):
        return _federated_credential(app, part.removeprefix("/federatedIdentityCredentials").lstrip("/"), method, body)
    if part == "/addPassword" and method == "POST":
        wanted = (body or {}).get("passwordCredential") or {}
        if refused := fake_entra_policies.password_refusal(d, app["id"], app["createdDateTime"], wanted):
            return refused
        secret = f"fake~{uuid.uuid4().hex}"
        credential = {"keyId": str(uuid.uuid4()), "displayName": wanted.get("displayName"),
                      "startDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "endDateTime": wanted.get("endDateTime") or "2099-01-01T00:00:00Z", "hint": secret[:3]}
        app["passwordCredentials"].append(credential)
        return 200, {**credential, "secretText": secret}
    return 405, _error("Request_BadRequest", f"{method} {part} is not served by the fake")


def _federated_credential(app: dict[str, Any], key: str, method: str, body: Any) -> Answer:
    """An application's federatedIdentityCredentials (Graph v1.0, federatedIdentityCredential): addressed by
    ID or name; a name is unique per application, and so is an (issuer, subject) pair."""
    credentials: list[dict[str, Any]] = app.setdefault("_federated", [])
    if not key and method == "GET":
        return 200, {"value": credentials}
    if not key and method == "POST":
        wanted = body or {}
        if any(c["name"] == wanted.get("name") or (c["issuer"], c["subject"]) == (wanted.get("issuer"),
                                                                                 wanted.get("subject"))
               for c in credentials):
            return 409, _error("Request_MultipleObjectsWithSameKeyValue",
                               "FederatedIdentityCredential with the same name or issuer and subject already exists.")
        credential = {"id": str(uuid.uuid4()), "description": None, **wanted}
        credentials.append(credential)
        return 201, credential
    found = [c for c in credentials if key in (c["id"], c["name"])]
    if not found:
        return 404, _error("Request_ResourceNotFound", f"Resource '{key}' does not exist.")
    if method == "PATCH":
        found[0].update(body or {})
        return 204, {}
    return (200, found[0]) if method == "GET" else (405, _error("Request_BadRequest", f"{method} is not served"))


def _new_application(d: Any, body: dict[str, Any], caller: str | None) -> dict[str, Any]:
    app = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "displayName": None, "identifierUris": [],
           "signInAudience": "AzureADMyOrg", "isFallbackPublicClient": None, "requiredResourceAccess": [],
           "web": {"redirectUris": [], "logoutUrl": None,
                   "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}},
           "passwordCredentials": [], "keyCredentials": [], "_owners": [caller] if caller else [],
           "createdDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    app.update(body)
    d.applications[app["id"]] = app
    return app


def _new_service_principal(d: Any, body: dict[str, Any]) -> Answer:
    app_id = body.get("appId")
    if app_id in d.service_principals:
        return 409, _error("Request_MultipleObjectsWithSameKeyValue",
                           "The service principal cannot be created, updated, or restored because the service "
                           "principal name ... is already in use.")
    if not any(a["appId"] == app_id for a in d.applications.values()):
        return 400, _error("Request_BadRequest", f"The appId '{app_id}' of the service principal does not reference "
                           "a valid application object.")
    sp = {"id": str(uuid.uuid4()), "appId": app_id, "servicePrincipalNames": [app_id],
          "accountEnabled": body.get("accountEnabled", True), "oauth2PermissionScopes": [], "appRoles": []}
    d.service_principals[app_id] = sp
    return 201, sp


def _new_user(d: Any, body: dict[str, Any]) -> Answer:
    from fake_entra import User

    upn = str(body.get("userPrincipalName", "")).lower()
    if upn in d.users:
        return 400, _error("Request_BadRequest", "Another object with the same value for property "
                           "userPrincipalName already exists.")
    user = User(upn, str((body.get("passwordProfile") or {}).get("password", "")))
    d.users[upn] = user
    return 201, _user_json(user)


def _user(d: Any, key: str) -> Any:
    key = key.lower()
    return d.users.get(key) or next((u for u in d.users.values() if u.id == key), None)


def _user_json(user: Any) -> dict[str, Any]:
    # A licence's plans as Graph lists them in assignedPlans: Teams is service TeamspaceAPI, Skype for
    # Business Online MicrosoftCommunicationsOnline.
    plans = [{"capabilityStatus": "Enabled", "service": service, "servicePlanId": str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                                                                  service))}
             for service in ("exchange", "TeamspaceAPI", "MicrosoftCommunicationsOnline")] if user.licensed else []
    return {"@odata.type": "#microsoft.graph.user", "id": user.id, "userPrincipalName": user.upn,
            "displayName": user.upn.split("@")[0], "accountEnabled": user.enabled, "assignedPlans": plans}


def _matches(item: dict[str, Any], filter_: str) -> bool:
    """The few OData filters az sends, and-ed."""
    for clause in filter(None, (c.strip() for c in filter_.split(" and "))):
        if m := re.fullmatch(r"startswith\((\w+),\s*'([^']*)'\)", clause):
            if not str(item.get(m.group(1)) or "").startswith(m.group(2)):
                return False
        elif m := re.fullmatch(r"(\w+)/any\(\w+:\w+ eq '([^']*)'\)", clause):
            if m.group(2) not in (item.get(m.group(1)) or []):
                return False
        elif m := re.fullmatch(r"(\w+) eq '([^']*)'", clause):
            if str(item.get(m.group(1))) != m.group(2):
                return False
        else:
            raise ValueError(f"the fake does not understand the filter {clause!r}")
    return True


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": str(uuid.uuid4())}}}
