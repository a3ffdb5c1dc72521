"""The keys a stack's config may hold: their names, the defaults Pulumi.yaml declares, which are secret,
and the azuread provider's own keys a stack may set."""

from __future__ import annotations

from typing import Any, Literal, get_args

from presencesync.permissions import PROFILE_NAMES, Profile

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
CONSENT_MODES: tuple[Consent, ...] = get_args(Consent)
IMPLICIT_GRANT_KEYS = ("accessTokens", "idTokens")
