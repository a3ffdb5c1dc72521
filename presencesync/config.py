"""A stack's settings as one typed, validated object, read from the config Pulumi hands the program.

Values arrive as Pulumi hands them to a program: strings, with objects and arrays as JSON text.
Every problem is collected and reported at once, one line per problem naming the key and the fix.
The keys are declared in config_keys.py; the values are read by config_values.py, the client secrets'
keys by config_client_secrets.py and the sync users' by config_sync_users.py.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from presencesync.client_secrets import SecretPlan
from presencesync.clouds import CLOUDS
from presencesync.config_client_secrets import read_client_secrets
from presencesync.config_keys import (
    CLIENT_KEY,
    CONSENT_MODES,
    DEFAULTS,
    ENVIRONMENT_KEY,
    IMPLICIT_GRANT_KEYS,
    KNOWN_KEYS,
    NAMESPACE,
    PROFILE_DEFAULTS,
    PROFILES,
    PROVIDER_KEYS,
    SECRET_KEYS,
    STACK_PROVIDER_KEYS,
    TENANT_KEY,
    Consent,
)
from presencesync.config_sync_users import SyncUser, read_sync_users, read_watched_users
from presencesync.config_values import DOMAIN, Reader, https_problem, redirect_uri_problem, suggest
from presencesync.errors import PresenceSyncError
from presencesync.names import AUDIENCES, PERSONAL_AUDIENCES
from presencesync.permissions import Profile
from presencesync.sync_users import sizing_problem
from presencesync.untrusted import excerpt, is_guid, value_problems


class Secret:
    """A secret string whose text never shows in a repr, a log line or an exception."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    profile: Profile
    display_name: str
    sign_in_audience: str
    redirect_uris: tuple[str, ...]
    logout_url: str | None
    implicit_access_tokens: bool
    implicit_id_tokens: bool
    public_client: bool
    client_secrets: SecretPlan
    consent: Consent
    sync_user: SyncUser
    sync_user_password: Secret
    owners: tuple[str, ...]
    tenant_domain: str | None
    protect: bool
    post_deploy: bool
    post_deploy_timeout: int
    environment: str  # azuread:environment
    tenant_id: str  # azuread:tenantId: the customer's directory, where everything runs
    client_id: str | None  # azuread:clientId: the deployer app, where the stack names one
    # Novus's collection of sync users in its page order (the first is sync_user), their passwords, and how many
    # people Novus follows (None: not said).
    sync_users: tuple[SyncUser, ...] = ()
    sync_user_passwords: tuple[Secret, ...] = ()
    watched_users: int | None = None

    @property
    def secret_expiry(self) -> str | None:
        """As configured (1y, 2y, never or a date); None with rotation."""
        return self.client_secrets.expiry

    @property
    def secret_rotation_days(self) -> int | None:
        return self.client_secrets.rotation_days


class ConfigError(PresenceSyncError):
    """Every problem found in a stack's config, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    @property
    def lines(self) -> list[str]:
        return self.problems


def load_settings(
    values: Mapping[str, str], *, now: datetime, encrypted: frozenset[str] = frozenset()
) -> Settings:
    """Validate a stack's config (`namespace:key` to string) into Settings, or raise ConfigError.

    Keys in `encrypted` hold `secure:` values that cannot be read offline: they count as present and
    their contents are checked when Pulumi decrypts them.
    """
    r = Reader(values, encrypted)
    for key in values:
        namespace, _, name = key.partition(":")
        base = name.split(".", 1)[0].split("[", 1)[0]
        if namespace == NAMESPACE and name not in KNOWN_KEYS and base in KNOWN_KEYS:
            r.problem(excerpt(name), f"is a dotted key, which the program never sees as part of {NAMESPACE}:{base}; "
                      f"nest it under {NAMESPACE}:{base} in the stack file, or set it with "
                      f"pulumi config set --path {shlex.quote(f'{NAMESPACE}:{excerpt(name)}')} VALUE")
        elif namespace == NAMESPACE and name not in KNOWN_KEYS:
            r.problem(excerpt(name), f"unknown key{suggest(name, KNOWN_KEYS)}; remove it or correct its name")
        elif namespace == "azuread" and name not in STACK_PROVIDER_KEYS:
            r.problems.append(_provider_key_problem(excerpt(key), name))
        elif namespace != NAMESPACE and difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.75):
            r.problems.append(f"{excerpt(key)}: unknown namespace '{excerpt(namespace)}' (did you mean "
                              f"'{NAMESPACE}:{excerpt(name)}'?); correct the key's namespace")
    # Stack values may come from a pull request: none may become a CI command or an az file read.
    unsafe = value_problems(values, secret_keys=[f"{NAMESPACE}:{k}" for k in SECRET_KEYS], az_namespace=NAMESPACE)

    profile = cast(Profile, r.choice("profile", PROFILES))
    display_name = r.get("displayName").strip()
    if not display_name:
        r.problem("displayName", "is empty; set the application's display name, e.g. PresenceSync")
    audience = r.get("signInAudience")
    if audience in PERSONAL_AUDIENCES:
        r.problem("signInAudience", f"'{excerpt(audience)}' admits personal Microsoft accounts, which cannot use "
                  "the sync user's password sign-in; use AzureADMyOrg (or AzureADMultipleOrgs)")
    elif audience not in AUDIENCES:
        r.problem("signInAudience", f"'{excerpt(audience)}' is not one of {', '.join(AUDIENCES)}; use AzureADMyOrg")
    redirect_uris = tuple(r.strings("redirectUris", redirect_uri_problem))
    if len(set(redirect_uris)) != len(redirect_uris):
        r.problem("redirectUris", "lists the same URI twice; remove the duplicate")
    logout_url = r.optional("logoutUrl")
    if logout_url is not None and (why := https_problem(logout_url)):
        r.problem("logoutUrl", f"'{excerpt(logout_url)}' {why}")
    profile_defaults = PROFILE_DEFAULTS.get(profile, PROFILE_DEFAULTS["ucwa"])
    implicit = r.flags("implicitGrant", IMPLICIT_GRANT_KEYS, profile_defaults["implicitGrant"])
    if profile == "graph" and any(implicit.values()):
        r.problem("implicitGrant", "must stay off with profile graph, which has no browser sign-in; "
                  "remove the key (or set both to false)")
    secrets = read_client_secrets(r, now)
    sync_users = read_sync_users(r, encrypted)
    watched_users = read_watched_users(r)
    if sync_users and (too_few := sizing_problem(profile, watched_users, len(sync_users))):
        r.problems.append(too_few)
    owners = tuple(r.strings("owners", lambda v: None if is_guid(v) else "is not an object ID (GUID)"))
    tenant_domain = r.optional("tenantDomain")
    if tenant_domain is not None and not DOMAIN.fullmatch(tenant_domain):
        r.problem("tenantDomain", f"'{excerpt(tenant_domain)}' is not a domain name; use the primary domain, "
                  "e.g. contoso.com, or remove the key")
    timeout = r.integer("postDeployTimeout", 1, 3600)
    environment = values.get(ENVIRONMENT_KEY, "public")
    if environment not in CLOUDS:
        r.problems.append(f"{ENVIRONMENT_KEY}: '{excerpt(environment)}' is not a cloud the azuread provider knows; "
                          f"use one of {', '.join(CLOUDS)}")
    tenant_id = _tenant_id(values, r.problems)
    client_id = values.get(CLIENT_KEY)
    if client_id is not None and not is_guid(client_id):
        r.problems.append(f"{CLIENT_KEY}: '{excerpt(client_id)}' is not an application (client) ID (GUID); set the "
                          f"deployer app's ID with pulumi config set {CLIENT_KEY} <GUID>, or remove the key")
    consent = cast(Consent, r.choice("consent", CONSENT_MODES))
    protect = r.boolean("protect")
    post_deploy = r.boolean("postDeploy")
    public_client = r.boolean("publicClient", profile_defaults["publicClient"])
    if unsafe or r.problems:  # one line per key: its own rule's where it has one (values quoted escaped)
        named = {line.split(": ", 1)[0] for line in r.problems}
        raise ConfigError([line for line in unsafe if line.split(": ", 1)[0] not in named] + r.problems)
    assert sync_users and secrets is not None
    sync_user, password = sync_users[0]
    return Settings(
        profile=profile, display_name=display_name, sign_in_audience=audience,
        redirect_uris=redirect_uris, logout_url=logout_url,
        implicit_access_tokens=implicit["accessTokens"], implicit_id_tokens=implicit["idTokens"],
        public_client=public_client, client_secrets=secrets,
        consent=consent, sync_user=sync_user, sync_user_password=Secret(password),
        owners=owners, tenant_domain=tenant_domain, protect=protect, post_deploy=post_deploy,
        post_deploy_timeout=timeout, environment=environment, tenant_id=tenant_id, client_id=client_id,
        sync_users=tuple(u for u, _ in sync_users), sync_user_passwords=tuple(Secret(p) for _, p in sync_users),
        watched_users=watched_users,
    )


def _tenant_id(values: Mapping[str, str], problems: list[str]) -> str:
    """The stack's tenant: required, so that no environment or login default decides where a stack runs."""
    tenant_id = values.get(TENANT_KEY)
    fix = f"set the customer's directory (tenant) ID with pulumi config set {TENANT_KEY} <GUID>"
    if tenant_id is None:
        problems.append(f"{TENANT_KEY}: is missing; every stack names its tenant: {fix}")
    elif not is_guid(tenant_id):
        problems.append(f"{TENANT_KEY}: '{excerpt(tenant_id)}' is not a tenant ID (GUID); {fix}")
    return tenant_id or ""


def _provider_key_problem(key: str, name: str) -> str:
    if name in PROVIDER_KEYS:
        return (f"{key}: chooses how or where the azuread provider signs in (credentials or sign-in endpoints), "
                f"which a stack file must not decide; remove it (the pipeline's ARM_* variables or az login give "
                f"the credentials; a stack sets only {', '.join(f'azuread:{k}' for k in STACK_PROVIDER_KEYS)})")
    return (f"{key}: not a configuration key of the azuread provider"
            f"{suggest(name, STACK_PROVIDER_KEYS) or suggest(name, PROVIDER_KEYS)}; correct its name or remove it")


def from_pulumi(now: datetime) -> Settings:
    """The settings of the running Pulumi program; config problems stop it without a traceback."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    # The language host hands config over in PULUMI_CONFIG; tests and `check` set it directly.
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    # Pulumi.yaml cannot declare the passwords secret (see DEFAULTS), so the program refuses plain text.
    plain = [k for k in SECRET_KEYS if values.get(f"{NAMESPACE}:{k}", str(DEFAULTS[k])) not in ("", "{}")
             and not runtime_config.is_config_secret(f"{NAMESPACE}:{k}")]
    try:
        if plain:
            how = {"syncUserPassword": f"pulumi config set --secret {NAMESPACE}:syncUserPassword",
                   "syncUserPasswords": f"pulumi config set --secret --path '{NAMESPACE}:syncUserPasswords[\"UPN\"]'"}
            raise ConfigError([f"{NAMESPACE}:{k}: is not encrypted; remove it from the stack file and set it with "
                               f"{how[k]}" for k in plain])
        return load_settings(values, now=now)
    except ConfigError as error:
        raise pulumi.RunError(f"the stack's config has {len(error.problems)} problem(s):\n{error}") from None
