"""The deployer's Microsoft Graph token, found the way the azuread provider finds its credentials.

In order: a client secret or certificate (`ARM_CLIENT_ID`, `ARM_TENANT_ID`, `ARM_CLIENT_SECRET` or
`ARM_CLIENT_CERTIFICATE_PATH`); OIDC workload identity (`ARM_USE_OIDC` with `ARM_OIDC_TOKEN`,
`ARM_OIDC_TOKEN_FILE_PATH` or GitHub Actions' token request); the Azure CLI's signed-in account; and,
only on a terminal, a device-code sign-in. Tokens never reach a log line or an error message.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from presencesync.clouds import Endpoints
from presencesync.errors import PresenceSyncError
from presencesync.graph import TokenUnavailableError

# The Azure CLI's public client, which Entra ID pre-authorizes for Graph (azure-cli, AZ_CLI_AAP_ID).
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
OIDC_AUDIENCE = "api://AzureADTokenExchange"


class CredentialsError(PresenceSyncError):
    """No usable deployer credentials; the message says which variables to set."""


@dataclass(frozen=True)
class TokenSource:
    description: str  # e.g. "client secret of ARM_CLIENT_ID 1234..."; never holds a secret
    token: Callable[[], str]


def graph_token_source(endpoints: Endpoints, env: Mapping[str, str] = os.environ,
                       interactive: bool | None = None, http_cache: dict[str, Any] | None = None) -> TokenSource:
    """The first credential in the provider's order that is configured; raise CredentialsError if none.
    `http_cache` may hold msal's discovery answers already (another client's, for the same authority)."""
    scope = endpoints.graph_scope
    client_id, tenant = env.get("ARM_CLIENT_ID"), env.get("ARM_TENANT_ID")
    if client_id and (env.get("ARM_CLIENT_SECRET") or env.get("ARM_CLIENT_CERTIFICATE_PATH")):
        if not tenant:
            raise CredentialsError("ARM_CLIENT_ID is set but ARM_TENANT_ID is not; set the tenant's ID")
        credential: Any = env.get("ARM_CLIENT_SECRET")
        if not credential:
            credential = {"private_key_pfx_path": env["ARM_CLIENT_CERTIFICATE_PATH"],
                          "passphrase": env.get("ARM_CLIENT_CERTIFICATE_PASSWORD") or None}
        kind = "client secret" if env.get("ARM_CLIENT_SECRET") else "client certificate"
        return _confidential(endpoints, client_id, tenant, credential, scope, f"{kind} of app {client_id}",
                             http_cache)
    if env.get("ARM_USE_OIDC", "").lower() == "true":
        if not (client_id and tenant):
            missing = " and ".join(name for name, value in (("ARM_CLIENT_ID", client_id), ("ARM_TENANT_ID", tenant))
                                   if not value)
            verb = "are" if " and " in missing else "is"
            raise CredentialsError(f"ARM_USE_OIDC is set but {missing} {verb} not; set {missing}")
        assertion = _oidc_assertion(env)
        return _confidential(endpoints, client_id, tenant, {"client_assertion": assertion}, scope,
                             f"OIDC federated credential of app {client_id}", http_cache)
    if shutil.which("az"):
        return TokenSource("Azure CLI account", _az_cli_token(scope, tenant))
    if interactive if interactive is not None else sys.stdin.isatty():
        return _device_code(endpoints, tenant or "organizations", scope)
    raise CredentialsError(
        "no credentials for Microsoft Graph: set ARM_CLIENT_ID, ARM_TENANT_ID and ARM_CLIENT_SECRET "
        "(or ARM_CLIENT_CERTIFICATE_PATH), or ARM_USE_OIDC=true with an OIDC token, or run az login")


def token_claims(token: str) -> dict[str, Any] | None:
    """The claims of an Entra access token (a JWT), unverified: for reading, never for trusting."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def deployer_object_id(endpoints: Endpoints, env: Mapping[str, str] = os.environ) -> str:
    """The object ID of whoever deploys: the `oid` claim of their Graph token."""
    source = graph_token_source(endpoints, env, interactive=False)
    claims = token_claims(source.token()) or {}
    if not isinstance(claims.get("oid"), str):
        raise CredentialsError(f"the Graph token from the {source.description} names no object ID (oid)")
    return str(claims["oid"])


def forget_token_answers(http_cache: dict[str, Any]) -> None:
    """Drop msal's kept token-endpoint answers (it replays a failed one for up to a minute, so a retry
    would not really go out), keeping its discovery and user realm answers."""
    for key in [k for k in http_cache if isinstance(k, str) and k.startswith("POST ")]:
        del http_cache[key]


def _confidential(endpoints: Endpoints, client_id: str, tenant: str, credential: Any, scope: str,
                  description: str, http_cache: dict[str, Any] | None) -> TokenSource:
    http_cache = {} if http_cache is None else http_cache
    app = msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=endpoints.authority(tenant),
        instance_discovery=False, http_cache=http_cache)

    def token() -> str:
        try:
            return _access_token(app.acquire_token_for_client(scopes=[scope]), description)
        except MsalServiceError:  # msal raises on 429/5xx token answers
            forget_token_answers(http_cache)  # or msal would replay this failure to the retry
            raise TokenUnavailableError(f"sign-in with the {description}: the token endpoint is unavailable") from None

    return TokenSource(description, token)


def _access_token(result: dict[str, Any] | None, description: str) -> str:
    if result and "access_token" in result:
        return str(result["access_token"])
    result = result or {}
    first_line = str(result.get("error_description", "")).splitlines()[0:1]
    raise CredentialsError(f"sign-in with the {description} failed: {result.get('error', 'no answer')}"
                           f"{': ' + first_line[0] if first_line else ''}")


def _oidc_assertion(env: Mapping[str, str]) -> Callable[[], str]:
    if env.get("ARM_OIDC_TOKEN"):
        token = env["ARM_OIDC_TOKEN"]
        return lambda: token
    if env.get("ARM_OIDC_TOKEN_FILE_PATH"):
        path = env["ARM_OIDC_TOKEN_FILE_PATH"]
        return lambda: _read_token_file(path)
    url = env.get("ARM_OIDC_REQUEST_URL") or env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = env.get("ARM_OIDC_REQUEST_TOKEN") or env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        return lambda: _github_oidc_token(url, bearer)
    raise CredentialsError("ARM_USE_OIDC is set but no OIDC token was found: set ARM_OIDC_TOKEN or "
                           "ARM_OIDC_TOKEN_FILE_PATH, or grant the workflow 'id-token: write'")


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise CredentialsError(f"ARM_OIDC_TOKEN_FILE_PATH: cannot read {path} ({error.strerror})") from None


def _github_oidc_token(url: str, bearer: str) -> str:
    response = requests.get(url, params={"audience": OIDC_AUDIENCE},
                            headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    if response.status_code != 200 or "value" not in response.json():
        raise CredentialsError(f"the CI's OIDC token request answered {response.status_code}; "
                               "check the workflow's 'id-token: write' permission")
    return str(response.json()["value"])


def _az_cli_token(scope: str, tenant: str | None) -> Callable[[], str]:
    cached: dict[str, Any] = {}

    def token() -> str:
        if cached and cached["expires"] - 300 > time.time():
            return str(cached["token"])
        command = ["az", "account", "get-access-token", "--scope", scope, "--output", "json"]
        if tenant:
            command += ["--tenant", tenant]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise CredentialsError(f"az account get-access-token failed ({reason}); run az login")
        answer = json.loads(done.stdout)
        cached.update(token=answer["accessToken"], expires=float(answer.get("expires_on", 0)))
        return str(answer["accessToken"])

    return token


def _device_code(endpoints: Endpoints, tenant: str, scope: str) -> TokenSource:
    app = msal.PublicClientApplication(AZURE_CLI_CLIENT_ID, authority=endpoints.authority(tenant),
                                       instance_discovery=False)

    def token() -> str:
        accounts = app.get_accounts()
        result = app.acquire_token_silent([scope], account=accounts[0]) if accounts else None
        if not result:
            flow = app.initiate_device_flow(scopes=[scope])
            if "user_code" not in flow:
                raise CredentialsError(f"device-code sign-in could not start: {flow.get('error')}")
            print(flow["message"], file=sys.stderr, flush=True)
            result = app.acquire_token_by_device_flow(flow)
        return _access_token(result, "device-code sign-in")

    return TokenSource("device-code sign-in", token)
