"""A stack's settings as one typed, validated object: every config rule and message lives here.

Values arrive as Pulumi hands them to a program: strings, with objects and arrays as JSON text.
Every problem is collected and reported at once, one line per problem naming the key and the fix.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

from presencesync.client_secrets import SecretPlan, rotating_secrets, single_secret
from presencesync.clouds import CLOUDS
from presencesync.errors import PresenceSyncError
from presencesync.names import AUDIENCES, PERSONAL_AUDIENCES
from presencesync.permissions import PROFILE_NAMES, Profile
from presencesync.rfc3339 import format_rfc3339
from presencesync.sync_users import collection_problems, password_for, sizing_problem
from presencesync.untrusted import excerpt, value_problems

NAMESPACE = "presencesync"
ENVIRONMENT_KEY = "azuread:environment"
TENANT_KEY = "azuread:tenantId"
CLIENT_KEY = "azuread:clientId"
# The azuread provider's own configuration keys (pulumi-azuread 6.11.1, pulumi_azuread/config/vars.py;
# its schema.json `config.variables`): a key outside this list is a typo the provider would ignore.
PROVIDER_KEYS = (
    "adoPipelineServiceConnectionId", "clientCertificate", "clientCertificatePassword", "clientCertificatePath",
    "clientId", "clientIdFilePath", "clientSecret", "clientSecretFilePath", "disableTerraformPartnerId",
    "environment", "metadataHost", "msiEndpoint", "oidcRequestToken", "oidcRequestUrl", "oidcToken",
    "oidcTokenFilePath", "partnerId", "tenantId", "useAksWorkloadIdentity", "useCli", "useMsi", "useOidc",
)
# The only provider keys a stack may set. The others choose how and where the provider signs in
# (credentials, token files, sign-in endpoints): a stack file may come from a pull request, and such a
# key in it would move the deployer's sign-in, so the pipelines' environment alone decides them.
STACK_PROVIDER_KEYS = ("tenantId", "clientId", "environment")

# The defaults, in the form Pulumi.yaml declares them (a test keeps the two in step). The Pulumi CLI
# refuses to run a stack that lacks a declared key with no default, and hands a declared default to the
# program as if the stack had set it. So every optional key is declared with a default, and where the
# real default depends on the profile or on another key, that default is an empty value read as "not set".
DEFAULTS: dict[str, Any] = {
    "profile": "ucwa",
    "displayName": "PresenceSync",
    "signInAudience": "AzureADMyOrg",
    "redirectUris": [],
    "logoutUrl": "",
    "implicitGrant": {},  # each flag not given takes the profile's default
    "secretExpiry": "",  # 2y, unless secretRotationDays is set
    "secretRotationDays": 0,  # 0: no rotation
    "secretRotationOffsetDays": 0,  # 0: the periods start at the epoch, as before offsets existed
    "consent": "resource",
    "owners": [],
    "tenantDomain": "",  # the tenant's default domain
    "protect": False,
    "postDeploy": True,
    "postDeployTimeout": 300,
    # The sync users: syncUser and syncUserPassword (one user) or syncUsers and syncUserPasswords (several).
    # Neither form can be required, so both are declared with an empty default read as "not set" (syncUsers is
    # not declared: an empty list is a mistake, not "not set"); the program requires exactly one form. The
    # passwords cannot be declared secret: the CLI fills in a default and then refuses a secret key whose value
    # is not encrypted, so the program checks that they are.
    "syncUser": {},
    "syncUserPassword": "",
    "syncUserPasswords": {},
    "watchedUsers": 0,  # 0: not said
}
# Defaults that depend on the profile or on other keys.
PROFILE_DEFAULTS: dict[Profile, dict[str, Any]] = {
    "ucwa": {"implicitGrant": {"accessTokens": True, "idTokens": True}, "publicClient": True},
    # Graph presence needs no browser sign-in, and the sync user's password sign-in goes through the
    # confidential client (with the secret), so neither setting is needed.
    "graph": {"implicitGrant": {"accessTokens": False, "idTokens": False}, "publicClient": False},
}
DEFAULT_SECRET_EXPIRY = "2y"  # unless secretRotationDays is set
REQUIRED: tuple[str, ...] = ()
# A boolean has no empty value to declare as "not set", so Pulumi.yaml does not declare this key.
UNDECLARED = ("publicClient", "syncUsers")
KNOWN_KEYS = (*DEFAULTS, *REQUIRED, *UNDECLARED)
SECRET_KEYS = ("syncUserPassword", "syncUserPasswords")  # must be encrypted in the stack (the program checks)

PROFILES = PROFILE_NAMES
Consent = Literal["resource", "hook", "manual"]
ROTATION_DAYS = (31, 365)  # above the 30-day expiry warning; two periods stay within two years
CONSENT_MODES: tuple[Consent, ...] = get_args(Consent)
NEVER_EXPIRES = "2100-12-31T00:00:00Z"  # what the guide's CLI path uses for "Never"
SYNC_USER_KEYS = ("userPrincipalName", "create", "usageLocation", "licenseSkuId", "licensedElsewhere")
IMPLICIT_GRANT_KEYS = ("accessTokens", "idTokens")

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DOMAIN = re.compile(r"(?=.{4,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_UPN_LOCAL = re.compile(r"[A-Za-z0-9'_!#^~+-]+(\.[A-Za-z0-9'_!#^~+-]+)*")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?")
# An unquoted YAML date or timestamp reaches the program as Go's time.Time.String() text,
# e.g. 2027-01-01 00:00:00 +0000 UTC: the CLI's YAML reader makes it a time and prints it so.
_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2}) \S+")
# Characters Entra ID refuses in a redirect URI; a wildcard is refused for work and school accounts.
_REDIRECT_URI_REFUSED = frozenset("!$'(),;* ")
_COUNTRY = re.compile(r"[A-Z]{2}")


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
class SyncUser:
    user_principal_name: str
    create: bool
    usage_location: str | None
    license_sku_id: str | None


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
    r = _Reader(values, encrypted)
    for key in values:
        namespace, _, name = key.partition(":")
        base = name.split(".", 1)[0].split("[", 1)[0]
        if namespace == NAMESPACE and name not in KNOWN_KEYS and base in KNOWN_KEYS:
            r.problem(excerpt(name), f"is a dotted key, which the program never sees as part of {NAMESPACE}:{base}; "
                      f"nest it under {NAMESPACE}:{base} in the stack file, or set it with "
                      f"pulumi config set --path {shlex.quote(f'{NAMESPACE}:{excerpt(name)}')} VALUE")
        elif namespace == NAMESPACE and name not in KNOWN_KEYS:
            r.problem(excerpt(name), f"unknown key{_suggest(name, KNOWN_KEYS)}; remove it or correct its name")
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
    redirect_uris = tuple(r.strings("redirectUris", _redirect_uri_problem))
    if len(set(redirect_uris)) != len(redirect_uris):
        r.problem("redirectUris", "lists the same URI twice; remove the duplicate")
    logout_url = r.optional("logoutUrl")
    if logout_url is not None and (why := _https_problem(logout_url)):
        r.problem("logoutUrl", f"'{excerpt(logout_url)}' {why}")
    profile_defaults = PROFILE_DEFAULTS.get(profile, PROFILE_DEFAULTS["ucwa"])
    implicit = r.flags("implicitGrant", IMPLICIT_GRANT_KEYS, profile_defaults["implicitGrant"])
    if profile == "graph" and any(implicit.values()):
        r.problem("implicitGrant", "must stay off with profile graph, which has no browser sign-in; "
                  "remove the key (or set both to false)")
    secrets = _client_secrets(r, now)
    sync_users = _sync_users(r, encrypted)
    watched_users = _watched_users(r)
    if sync_users and (too_few := sizing_problem(profile, watched_users, len(sync_users))):
        r.problems.append(too_few)
    owners = tuple(r.strings("owners", lambda v: None if _GUID.fullmatch(v) else "is not an object ID (GUID)"))
    tenant_domain = r.optional("tenantDomain")
    if tenant_domain is not None and not _DOMAIN.fullmatch(tenant_domain):
        r.problem("tenantDomain", f"'{excerpt(tenant_domain)}' is not a domain name; use the primary domain, "
                  "e.g. contoso.com, or remove the key")
    timeout = r.integer("postDeployTimeout", 1, 3600)
    environment = values.get(ENVIRONMENT_KEY, "public")
    if environment not in CLOUDS:
        r.problems.append(f"{ENVIRONMENT_KEY}: '{excerpt(environment)}' is not a cloud the azuread provider knows; "
                          f"use one of {', '.join(CLOUDS)}")
    tenant_id = _tenant_id(values, r.problems)
    client_id = values.get(CLIENT_KEY)
    if client_id is not None and not _GUID.fullmatch(client_id):
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
    elif not _GUID.fullmatch(tenant_id):
        problems.append(f"{TENANT_KEY}: '{excerpt(tenant_id)}' is not a tenant ID (GUID); {fix}")
    return tenant_id or ""


def _provider_key_problem(key: str, name: str) -> str:
    if name in PROVIDER_KEYS:
        return (f"{key}: chooses how or where the azuread provider signs in (credentials or sign-in endpoints), "
                f"which a stack file must not decide; remove it (the pipeline's ARM_* variables or az login give "
                f"the credentials; a stack sets only {', '.join(f'azuread:{k}' for k in STACK_PROVIDER_KEYS)})")
    return (f"{key}: not a configuration key of the azuread provider"
            f"{_suggest(name, STACK_PROVIDER_KEYS) or _suggest(name, PROVIDER_KEYS)}; correct its name or remove it")


def _client_secrets(r: _Reader, now: datetime) -> SecretPlan | None:
    rotation = r.optional("secretRotationDays")
    if rotation is not None:
        low, high = ROTATION_DAYS
        if not rotation.isdigit() or not low <= int(rotation) <= high:
            r.problem("secretRotationDays", f"'{excerpt(rotation)}' is not a whole number of days from {low} to "
                      f"{high}; use e.g. 180 (or 0 for no rotation)")
            return None
        if r.optional("secretExpiry") is not None:
            r.problem("secretRotationDays", "cannot be combined with presencesync:secretExpiry (rotated secrets "
                      "live two periods); remove one of the two keys")
            return None
        offset = r.optional("secretRotationOffsetDays") or "0"
        if not offset.isdigit() or int(offset) >= int(rotation):
            r.problem("secretRotationOffsetDays", f"'{excerpt(offset)}' is not a whole number of days from 0 to "
                      f"{int(rotation) - 1} (below secretRotationDays); new-tenant writes one, or remove the key")
            return None
        return rotating_secrets(now.astimezone(UTC).date(), int(rotation), int(offset))
    if r.optional("secretRotationOffsetDays") is not None:
        r.problem("secretRotationOffsetDays", "applies only with presencesync:secretRotationDays; remove it")
    expiry = r.optional("secretExpiry") or DEFAULT_SECRET_EXPIRY
    end_date = _secret_end_date(expiry, now)
    if end_date is None:
        r.problem("secretExpiry", f"'{excerpt(expiry)}' is not 1y, 2y, never or an RFC 3339 date in the future "
                  "(e.g. 2027-06-30T00:00:00Z); set one of those")
        return None
    return single_secret(expiry, end_date)


def _sync_user(r: _Reader, value: Any, key: str = "syncUser") -> SyncUser | None:
    """One sync user's object (`syncUser`, or an item of `syncUsers`), or None with its problems noted."""
    fix = f"set it with pulumi config set --path presencesync:{key}.userPrincipalName sync@contoso.com"
    if not isinstance(value, dict):
        r.problem(key, "is not an object; set it as a YAML map in the stack file or with pulumi config set --path")
        return None
    ok = True
    for extra in set(value) - set(SYNC_USER_KEYS):
        r.problem(f"{key}.{excerpt(str(extra))}", f"unknown key{_suggest(str(extra), SYNC_USER_KEYS)}; remove it")
        ok = False
    upn = value.get("userPrincipalName")
    if not isinstance(upn, str) or not upn:
        r.problem(f"{key}.userPrincipalName", f"is missing; {fix}")
        ok = False
    elif (why := _upn_problem(upn)) is not None:
        r.problem(f"{key}.userPrincipalName", f"'{excerpt(upn)}' {why}")
        ok = False
    create = value.get("create", False)
    if not isinstance(create, bool):
        r.problem(f"{key}.create", f"'{excerpt(str(create))}' is not true or false")
        ok = False
    location = value.get("usageLocation")
    if location is not None and (not isinstance(location, str) or not _COUNTRY.fullmatch(location)):
        r.problem(f"{key}.usageLocation", f"'{excerpt(str(location))}' is not a two-letter country code, e.g. DK")
        ok = False
    sku = value.get("licenseSkuId")
    elsewhere = value.get("licensedElsewhere", False)
    if not isinstance(elsewhere, bool):
        r.problem(f"{key}.licensedElsewhere", f"'{excerpt(str(elsewhere))}' is not true or false")
        ok = False
    elif elsewhere and (create is not True or sku is not None):
        r.problem(f"{key}.licensedElsewhere", "applies only to a created user without syncUser.licenseSkuId; "
                  "remove one of the two")
        ok = False
    elif create is True and sku is None and not elsewhere:
        r.problem(f"{key}.licenseSkuId", "is required for a created sync user, which needs an Office 365 "
                  "licence (E1 or higher) to sign in to Teams: set it and syncUser.usageLocation, or set "
                  "syncUser.licensedElsewhere: true if the licence is given another way")
        ok = False
    if sku is not None:
        if not isinstance(sku, str) or not _GUID.fullmatch(sku):
            r.problem(f"{key}.licenseSkuId", f"'{excerpt(str(sku))}' is not a SKU ID (GUID); "
                      "find it with: az rest --url https://graph.microsoft.com/v1.0/subscribedSkus")
            ok = False
        elif create is not True:
            r.problem(f"{key}.licenseSkuId", "applies only with syncUser.create: true; "
                      "license an existing user yourself, or remove the key")
            ok = False
        elif location is None:
            r.problem(f"{key}.usageLocation", "is required to license a user; set the user's "
                      "two-letter country code, e.g. DK")
            ok = False
    if not ok:
        return None
    return SyncUser(user_principal_name=str(upn), create=bool(create), usage_location=location,
                    license_sku_id=sku)


def _sync_users(r: _Reader, encrypted: frozenset[str]) -> list[tuple[SyncUser, str]]:
    """Novus's sync users with their passwords, from the one-user form (syncUser, syncUserPassword) or the
    collection (syncUsers, syncUserPasswords); empty with the problems noted. An encrypted password (only
    offline) counts as present and reads as "(encrypted)"."""
    one, password = r.optional("syncUser"), r.optional("syncUserPassword")
    many, passwords = r.values.get(f"{NAMESPACE}:syncUsers"), r.optional("syncUserPasswords")
    if one is not None and many is not None:
        r.problem("syncUsers", "cannot be combined with presencesync:syncUser; keep one form (for several sync users "
                  "list them all in syncUsers, their passwords in syncUserPasswords)")
        return []
    if many is None:
        if passwords is not None:
            r.problem("syncUserPasswords", "belongs with presencesync:syncUsers; with syncUser give the password in "
                      "presencesync:syncUserPassword")
        if one is None:
            r.problem("syncUser", "is missing; set it with pulumi config set --path presencesync:syncUser."
                      "userPrincipalName sync@contoso.com (or list several sync users in presencesync:syncUsers)")
        if password is None:
            r.problem("syncUserPassword", "is missing; set it with "
                      "pulumi config set --secret presencesync:syncUserPassword")
        value = r.parse_json("syncUser", one, dict, "an object") if one is not None else None
        user = _sync_user(r, value) if value is not None else None
        if user is None or password is None:
            return []
        return [(user, password)] if _password_ok(r, "syncUserPassword", user, password,
                                                  "syncUserPassword" in encrypted) else []
    if password is not None:
        r.problem("syncUserPassword", "belongs with presencesync:syncUser; with syncUsers give each password in "
                  "presencesync:syncUserPasswords")
    items = r.parse_json("syncUsers", many, list, "an array")
    secrets = r.parse_json("syncUserPasswords", passwords or "{}", dict, "an object")
    if items is None or secrets is None:
        return []
    if not items:
        r.problem("syncUsers", "is an empty list; list at least one sync user, or use presencesync:syncUser")
        return []
    users = [_sync_user(r, item, f"syncUsers[{i}]") for i, item in enumerate(items)]
    found = [u for u in users if u is not None]
    if len(found) < len(users):
        return []
    before = len(r.problems)
    r.problems += collection_problems([u.user_principal_name for u in found], secrets)
    skus = sorted({u.license_sku_id for u in found if u.license_sku_id})
    if len(skus) > 1:
        r.problem("syncUsers", f"names {len(skus)} licence SKUs ({', '.join(skus)}), and the created sync users share "
                  "one licence group; give them one licenseSkuId")
    if len(r.problems) > before:
        return []
    collection = []
    for user in found:
        upn = user.user_principal_name
        value = password_for(upn, secrets)
        key = f"syncUserPasswords[\"{upn}\"]"
        sealed = isinstance(value, dict) and set(value) == {"secure"}
        if f"{NAMESPACE}:syncUserPasswords" in encrypted and not sealed:
            r.problem(key, "is in plain text in the stack file; remove it and set it with pulumi config set "
                      f"--secret --path 'presencesync:{key}' PASSWORD")
        elif not sealed and not isinstance(value, str):
            r.problem(key, "is not a string; set it with pulumi config set --secret --path")
        elif _password_ok(r, key, user, "(encrypted)" if sealed else value, sealed):
            collection.append((user, "(encrypted)" if sealed else value))
    return collection if len(collection) == len(found) else []


def _password_ok(r: _Reader, key: str, user: SyncUser, password: str, encrypted: bool) -> bool:
    if encrypted:
        return True  # checked when Pulumi decrypts it
    if not password:
        r.problem(key, "is empty; set the sync user's password")
        return False
    if user.create and not 8 <= len(password) <= 256:
        r.problem(key, "must be 8 to 256 characters for a new user; choose another")
        return False
    return True


def _watched_users(r: _Reader) -> int | None:
    """How many people Novus follows; the declared default 0 reads as not said."""
    value = r.optional("watchedUsers")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        r.problem("watchedUsers", f"'{excerpt(value)}' is not a positive whole number; set how many people Novus "
                  "follows, e.g. 2400, or remove the key")
        return None
    return int(value)


class _Reader:
    """Reads `presencesync:` keys, applying defaults and collecting problems."""

    def __init__(self, values: Mapping[str, str], encrypted: frozenset[str]) -> None:
        self.values = values
        self.encrypted = encrypted
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: {message}")

    def optional(self, key: str) -> str | None:
        """The key's value, or None where it is absent or holds its declared "not set" default."""
        value = self.values.get(f"{NAMESPACE}:{key}")
        default = DEFAULTS.get(key)
        if value is not None and default in ("", 0, {}) and value == str(default):
            return None
        return value

    def get(self, key: str) -> str:
        value = self.optional(key)
        if value is not None:
            return value
        default = DEFAULTS[key]
        return default if isinstance(default, str) else json.dumps(default)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key)
        if value not in allowed:
            self.problem(key, f"'{excerpt(value)}' is not one of {', '.join(allowed)}{_suggest(value, allowed)}")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.get(key) if default is None else self.optional(key) or json.dumps(default)
        if value.lower() not in ("true", "false"):
            self.problem(key, f"'{excerpt(value)}' is not true or false")
        return value.lower() == "true"

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.get(key)
        if not value.isdigit() or not low <= int(value) <= high:
            self.problem(key, f"'{excerpt(value)}' is not a whole number of seconds from {low} to {high}")
            return low
        return int(value)

    def parse_json(self, key: str, raw: str, kind: type, what: str) -> Any:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, kind):
            self.problem(key, f"is not {what}; set it as YAML {what} in the stack file "
                         f"or with pulumi config set --path")
            return None
        return value

    def strings(self, key: str, check: Callable[[str], str | None]) -> list[str]:
        items = self.parse_json(key, self.get(key), list, "an array")
        good: list[str] = []
        for i, item in enumerate(items or []):
            why = "is not a string" if not isinstance(item, str) else check(item)
            if why:
                self.problem(f"{key}[{i}]", f"'{excerpt(str(item))}' {why}")
            else:
                good.append(item)
        return good

    def flags(self, key: str, names: tuple[str, ...], defaults: Mapping[str, bool]) -> dict[str, bool]:
        raw = self.optional(key)
        value = (self.parse_json(key, raw, dict, "an object") or {}) if raw is not None else {}
        for extra in set(value) - set(names):
            self.problem(f"{key}.{excerpt(str(extra))}", f"unknown key{_suggest(str(extra), names)}; remove it")
        for name in names:
            if not isinstance(value.get(name, defaults[name]), bool):
                self.problem(f"{key}.{name}", f"'{excerpt(str(value[name]))}' is not true or false")
        return {name: value.get(name, defaults[name]) is True for name in names}


def _suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _upn_problem(upn: str) -> str | None:
    local, at, domain = upn.rpartition("@")
    if not at or not local or len(local) > 64 or not _UPN_LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        return "is not a user principal name; use the sync user's sign-in name, e.g. sync@contoso.com"
    return None


def _https_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return "is not an https URL; use https://..."
    if parts.fragment or "#" in url:
        return "has a fragment (#...), which Entra ID refuses; remove it"
    if len(url) > 256:
        return "is longer than 256 characters, which Entra ID refuses; shorten it"
    return None


def _redirect_uri_problem(url: str) -> str | None:
    if refused := sorted(_REDIRECT_URI_REFUSED & set(url)):
        return f"holds {' '.join(refused)}, which Entra ID refuses in a redirect URI; remove or percent-encode it"
    parts = urlsplit(url)
    if parts.scheme == "http":
        if parts.hostname != "localhost" or parts.query or parts.fragment or parts.username:
            return "is plain http on a host other than localhost; use https://... or http://localhost[:port][/path]"
        return None
    return _https_problem(url)


def _secret_end_date(expiry: str, now: datetime) -> str | None:
    """The client secret's end date (RFC 3339, UTC) for a configured expiry, or None when invalid.

    Relative expiries count from the start of today (UTC), so every run on one day agrees; the
    program keeps the secret's first end date afterwards (see tenant.py).
    """
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    if expiry == "never":
        return NEVER_EXPIRES
    if expiry in ("1y", "2y"):
        return format_rfc3339(_add_years(today, int(expiry[0])))
    if go_time := _GO_TIME.fullmatch(expiry):
        day, clock, hours, minutes = go_time.groups()
        expiry = f"{day}T{clock}{hours}:{minutes}"
    if not _RFC3339.fullmatch(expiry):
        return None
    try:
        when = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= now:
        return None
    return format_rfc3339(when)


def _add_years(day: datetime, years: int) -> datetime:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, month=3, day=1)


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
