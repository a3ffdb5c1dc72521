"""The guide's az CLI path: `requiredResourceAccess.json` and the az commands for every step.

Permission IDs Microsoft publishes are used as they are; the rest (the Skype for Business Online
scopes) are read by name from the tenant's resource service principals through Microsoft Graph.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from presencesync.clouds import endpoints_for
from presencesync.config import Settings
from presencesync.credentials import CredentialsError, graph_token_source
from presencesync.errors import PresenceSyncError
from presencesync.graph import Call, Deadline, Graph, GraphError
from presencesync.names import SECRET_DISPLAY_NAME
from presencesync.permissions import (
    PROFILES,
    ApiPermissions,
    PermissionNotFoundError,
    Profile,
    published_ids,
    role_ids,
    scope_ids,
)

LOOKUP_SECONDS = 60


class ManifestError(PresenceSyncError):
    """The manifest cannot be produced; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedApi:
    api: ApiPermissions
    scope_ids: tuple[str, ...]
    role_ids: tuple[str, ...] = ()


def resolve_permissions(profile: Profile, environment: str, env: Mapping[str, str] = os.environ) -> list[ResolvedApi]:
    """Every API of `profile` with its scope and role IDs: published ones offline, the others from the tenant."""
    apis = PROFILES[profile]
    published = {api: _published(api) for api in apis}
    unknown = [api for api in apis if published[api] is None]
    looked_up = _look_up(unknown, environment, env) if unknown else {}
    return [published[api] or looked_up[api] for api in apis]


def _published(api: ApiPermissions) -> ResolvedApi | None:
    scopes, roles = published_ids(api, "Scope"), published_ids(api, "Role")
    return None if scopes is None or roles is None else ResolvedApi(api, scopes, roles)


def _look_up(apis: list[ApiPermissions], environment: str, env: Mapping[str, str]) -> dict[ApiPermissions, ResolvedApi]:
    endpoints = endpoints_for(environment, env)
    names = ", ".join(f"{api.api} {' '.join(api.scopes + api.roles)}" for api in apis)
    try:
        source = graph_token_source(endpoints, env)
    except CredentialsError as error:
        raise ManifestError(f"the IDs of {names} are not published and must be read from the tenant; "
                            f"{error}") from None
    graph = Graph(endpoints.graph, source.token, Deadline(LOOKUP_SECONDS))
    calls = [Call("GET", f"/servicePrincipals(appId='{api.app_id}')?$select=id,appId,oauth2PermissionScopes,appRoles",
                  what=f"read the {api.api} service principal") for api in apis]
    try:
        answers = graph.batch(calls)
        return {api: ResolvedApi(
            api, tuple(scope_ids(api, {s["value"]: s["id"] for s in answer.body.get("oauth2PermissionScopes", [])})),
            tuple(role_ids(api, {r["value"]: r["id"] for r in answer.body.get("appRoles", [])})))
            for api, answer in zip(apis, answers, strict=True)}
    except GraphError as error:
        if error.status == 404:
            raise ManifestError(f"{error}; the tenant has no service principal for that API: create it with "
                                f"az ad sp create --id <its app ID>") from None
        raise ManifestError(str(error)) from None
    except (PermissionNotFoundError, CredentialsError) as error:
        raise ManifestError(str(error)) from None


def required_resource_access(resolved: list[ResolvedApi]) -> list[dict[str, Any]]:
    """The `requiredResourceAccess` array of the application manifest, as the guide's az path takes it."""
    return [{"resourceAppId": r.api.app_id,
             "resourceAccess": [*({"id": i, "type": "Scope"} for i in r.scope_ids),
                                *({"id": i, "type": "Role"} for i in r.role_ids)]} for r in resolved]


def az_script(settings: Settings, resolved: list[ResolvedApi]) -> str:
    """A bash script doing the guide's eight steps with az, consent by `permission grant`.

    Safe to run again: it reuses what exists and adds only what is missing (the application is found by
    its display name, the service principal, user, app role assignments and owners by their IDs), and
    adds a client secret only when none of its display name is still valid or NEW_SECRET=1 asks for one.
    Every command's failure stops it with that command's own message (`set -euo pipefail`, and command
    substitutions only in assignments, whose failure stops a script where an argument's would not).
    """
    q = shlex.quote
    create = [
        "az ad app create", f"--display-name {q(settings.display_name)}",
        f"--sign-in-audience {settings.sign_in_audience}",
        "--required-resource-accesses @requiredResourceAccess.json",
        f"--enable-access-token-issuance {str(settings.implicit_access_tokens).lower()}",
        f"--enable-id-token-issuance {str(settings.implicit_id_tokens).lower()}",
        f"--is-fallback-public-client {str(settings.public_client).lower()}",
    ]
    if settings.redirect_uris:
        create.append("--web-redirect-uris " + " ".join(q(u) for u in settings.redirect_uris))
    lines = [
        "#!/usr/bin/env bash",
        "# The manual setup guide's steps with the Azure CLI (generated by python -m presencesync manifest).",
        "# Run it signed in (az login) as a Global or Privileged Role Administrator of the tenant. It can be",
        "# run again: it reuses what exists and adds what is missing. NEW_SECRET=1 adds a new client secret",
        "# even when a valid one exists.",
        "set -euo pipefail",
        f"GRAPH={endpoints_for(settings.environment).graph}",
        "",
        "cat > requiredResourceAccess.json <<'JSON'",
        json.dumps(required_resource_access(resolved), indent=2),
        "JSON",
        "",
        "# Steps 1 to 4: register the application (az patches one of the same display name), its API",
        "# permissions, web platform and public client.",
        "APP_ID=\"$(" + " \\\n  ".join(create) + " \\\n  --query appId --output tsv)\"",
    ]
    if settings.logout_url:
        lines.append(f"az ad app update --id \"$APP_ID\" --set web.logoutUrl={q(settings.logout_url)}")
    lines += [
        "APP_SP_ID=\"$(az ad sp list --filter \"appId eq '$APP_ID'\" --query '[0].id' --output tsv)\"",
        "if [ -z \"$APP_SP_ID\" ]; then",
        "  APP_SP_ID=\"$(az ad sp create --id \"$APP_ID\" --query id --output tsv)\"",
        "fi",
        "",
        "# Step 2's admin consent: 'az ad app permission admin-consent' fails, 'grant' works (and replaces",
        "# an existing grant, so a rerun leaves one).",
        *(f"az ad app permission grant --id \"$APP_ID\" --api {r.api.app_id} "
          f"--scope {q(' '.join(r.api.scopes))} --output none" for r in resolved),
        "",
    ]
    if any(r.role_ids for r in resolved):
        lines += ["# Application permissions: an app role assignment each through Microsoft Graph, unless it exists."]
        for r in resolved:
            if not r.role_ids:
                continue
            lines.append(f"API_SP_ID=\"$(az ad sp show --id {r.api.app_id} --query id --output tsv)\"")
            for role, role_id in zip(r.api.roles, r.role_ids, strict=True):
                body_format = q('{"principalId": "%s", "resourceId": "%s", "appRoleId": "%s"}')
                lines += [
                    "ASSIGNED=\"$(az rest --method GET "
                    "--url \"$GRAPH/v1.0/servicePrincipals/$APP_SP_ID/appRoleAssignments\" "
                    f"--query \"length(value[?appRoleId=='{role_id}' && resourceId=='$API_SP_ID'])\" --output tsv)\"",
                    f"if [ \"$ASSIGNED\" = 0 ]; then  # {role}",
                    f"  BODY=\"$(printf {body_format} \"$APP_SP_ID\" \"$API_SP_ID\" {role_id})\"",
                    "  az rest --method POST --url \"$GRAPH/v1.0/servicePrincipals/$APP_SP_ID/appRoleAssignments\" "
                    "--body \"$BODY\" --output none",
                    "fi",
                ]
        lines.append("")
    for number, user in enumerate(settings.sync_users, start=1):
        if not user.create:
            continue
        variable, upn = _password_variable(number), user.user_principal_name
        # The body `az ad user create` sends (azure-cli role/custom.py `create_user`), with the password
        # left out: the script adds it from the environment, so it is never an argument, which any user of
        # the machine can read in the process list.
        before, after = json.dumps({
            "accountEnabled": True, "displayName": f"{settings.display_name} sync user{_suffix(number)}",
            "mailNickname": upn.split("@")[0], "userPrincipalName": upn,
            "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": "\0"}}).split("\\u0000")
        lines += [
            f"# Step 6: sync user {upn}, unless it exists (no MFA; give it an Office 365 licence in the admin",
            "# center). It is created through Graph from a body file only you can read (mktemp makes it 0600),",
            "# removed at once, so the password never is a command's argument.",
            f"if ! az ad user show --id {q(upn)} --query id --output tsv >/dev/null 2>&1; then",
            # Not in `${VAR:?message}`: a quote in the name (o'brien@...) would open a string there.
            f"  [ -n \"${{{variable}:-}}\" ] || "
            f"{{ echo {q(f'set {variable} to the password of {upn}')} >&2; exit 1; }}",
            f"  case \"${variable}\" in *[[:cntrl:]]*)",
            f"    echo \"{variable} holds a control character; choose another password\" >&2; exit 1;; esac",
            "  BODY_FILE=\"$(mktemp)\"",
            "  trap 'rm -f \"$BODY_FILE\"' EXIT",
            f"  PASSWORD_JSON=\"${{{variable}//\\\\/\\\\\\\\}}\"",
            "  PASSWORD_JSON=\"${PASSWORD_JSON//\\\"/\\\\\\\"}\"",
            f"  printf '%s%s%s' {q(before)} \"$PASSWORD_JSON\" {q(after)} >\"$BODY_FILE\"",
            "  az rest --method POST --url \"$GRAPH/v1.0/users\" --body \"@$BODY_FILE\" --output none",
            "  rm -f \"$BODY_FILE\"",
            "fi",
            "",
        ]
    ids = [f"SYNC_USER_ID{_suffix(n, '_')}" for n in range(1, len(settings.sync_users) + 1)]
    lines += [
        "# Step 7: owners: every sync user, you, and any extra owners (az adds only missing ones).",
        *(f"{variable}=\"$(az ad user show --id {q(user.user_principal_name)} --query id --output tsv)\""
          for variable, user in zip(ids, settings.sync_users, strict=True)),
        "ADMIN_ID=\"$(az ad signed-in-user show --query id --output tsv)\"",
        *(f"az ad app owner add --id \"$APP_ID\" --owner-object-id {o}"
          for o in (*(f"\"${v}\"" for v in ids), "\"$ADMIN_ID\"", *settings.owners)),
        "# Proof: each sync user is among the application's owners now.",
        "OWNERS=\"$(az ad app owner list --id \"$APP_ID\" --query '[].id' --output tsv)\"",
        *(f"grep -qx \"${v}\" <<<\"$OWNERS\" || {{ echo \"sync user {user.user_principal_name} is not an owner\" >&2; "
          "exit 1; }" for v, user in zip(ids, settings.sync_users, strict=True)),
        "",
        "# Step 4: the client secret, shown once: enter it on the Novus page. A new one only when none of",
        "# this display name is still valid, or NEW_SECRET=1."
        + (" (This path makes one secret; rotation needs pulumi up.)" if settings.secret_rotation_days else ""),
        "NOW=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"",
        "VALID_UNTIL=\"$(az ad app credential list --id \"$APP_ID\" "
        f"--query \"max([?displayName=='{SECRET_DISPLAY_NAME}' && endDateTime > '$NOW'].endDateTime)\" --output tsv)\"",
        "if [ -n \"$VALID_UNTIL\" ] && [ \"${NEW_SECRET:-0}\" != 1 ]; then",
        f"  SECRET=\"(unchanged: the secret '{SECRET_DISPLAY_NAME}' Novus has is valid until $VALID_UNTIL; "
        "NEW_SECRET=1 adds a new one)\"",
        "else",
        f"  SECRET=\"$(az ad app credential reset --id \"$APP_ID\" --append --display-name {q(SECRET_DISPLAY_NAME)} "
        f"--end-date {settings.client_secrets.current.end_date} --query password --output tsv)\"",
        "fi",
        "",
        "# Steps 5 and 8: the values for Novus's presence provider configuration page.",
    ]
    if settings.tenant_domain:
        lines.append(f"TENANT_DOMAIN={q(settings.tenant_domain)}")
    else:
        lines.append("TENANT_DOMAIN=\"$(az rest --method GET --url \"$GRAPH/v1.0/domains\" "
                     "--query \"value[?isDefault].id | [0]\" --output tsv)\"")
    lines += [
        "echo \"Tenant ID:     $TENANT_DOMAIN\"",
        "echo \"Client ID:     $APP_ID\"",
        "echo \"Client secret: $SECRET\"",
    ]
    for number, user in enumerate(settings.sync_users, start=1):  # in the order of the Novus page's collection
        label = f"User name{_suffix(number)}:"
        lines += [f"echo \"{label:<15}{user.user_principal_name}\"",
                  f"echo \"{'Password' + _suffix(number) + ':':<15}(the sync user's password)\""]
    return "\n".join(lines) + "\n"


def _suffix(number: int, separator: str = " ") -> str:
    """The first sync user keeps the one-user names (SYNC_USER_PASSWORD, "User name"); the others are numbered."""
    return "" if number == 1 else f"{separator}{number}"


def _password_variable(number: int) -> str:
    return f"SYNC_USER_PASSWORD{_suffix(number, '_')}"
