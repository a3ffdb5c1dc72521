"""What the azuread provider does with each input the program sets: replace or update in place, and how
its read stores the value, so a change can be classified as the engine would see it.

pulumi-azuread bridges hashicorp/terraform-provider-azuread (an SDKv2 provider): an attribute with
`ForceNew` in a resource's schema replaces the resource when it changes; an `Optional` + `Computed` one
left out keeps what the last read stored; SDKv2 compares a set without order, a list with it, and an
unset string as "". The sources (upstream v3.9.0, whose schemas of these resources are those of the
provider's main branch; `azuread_group_license` came later) are named per resource below and checked,
for the installed SDK, by tests/test_provider_schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from presencesync.names import APP_ROLE_ASSIGNMENT, APPLICATION, DELEGATED_GRANT, PASSWORD, SERVICE_PRINCIPAL

Form = Literal["string", "bool", "set", "list", "map", "block"]


@dataclass(frozen=True)
class Attribute:
    upstream: str  # the attribute's name in the upstream schema
    form: Form  # how the state holds it: a block is a list of at most one object
    replaces: bool = False  # ForceNew
    computed: bool = False  # Optional + Computed: left out, the state keeps the read's value
    nested: Mapping[str, Attribute] = field(default_factory=dict)  # a block's or a set's objects


def _block(upstream: str, **nested: Attribute) -> Attribute:
    return Attribute(upstream, "block", nested=nested)


# Per azuread type token: the inputs the program sets. `replaces` is read off the upstream schema.
SCHEMAS: dict[str, dict[str, Attribute]] = {
    # internal/services/applications/application_resource.go, applicationResource(); read by
    # applicationResourceRead and applications.go flattenApplicationRequiredResourceAccess / flattenApplicationWeb.
    APPLICATION: {
        "displayName": Attribute("display_name", "string"),
        "signInAudience": Attribute("sign_in_audience", "string"),
        "preventDuplicateNames": Attribute("prevent_duplicate_names", "bool"),
        "owners": Attribute("owners", "set"),
        "fallbackPublicClientEnabled": Attribute("fallback_public_client_enabled", "bool"),
        "requiredResourceAccesses": Attribute("required_resource_access", "set", nested={
            "resourceAppId": Attribute("resource_app_id", "string"),
            "resourceAccesses": Attribute("resource_access", "list")}),
        "web": _block("web", redirectUris=Attribute("redirect_uris", "set"),
                      logoutUrl=Attribute("logout_url", "string"),
                      implicitGrant=_block(
                          "implicit_grant",
                          accessTokenIssuanceEnabled=Attribute("access_token_issuance_enabled", "bool"),
                          idTokenIssuanceEnabled=Attribute("id_token_issuance_enabled", "bool"))),
    },
    # internal/services/serviceprincipals/service_principal_resource.go, servicePrincipalResource();
    # read by servicePrincipalResourceRead.
    SERVICE_PRINCIPAL: {
        "clientId": Attribute("client_id", "string", replaces=True),
        "owners": Attribute("owners", "set"),
    },
    # internal/services/serviceprincipals/service_principal_delegated_permission_grant_resource.go;
    # read by servicePrincipalDelegatedPermissionGrantResourceRead (claim values from the space-separated scope).
    DELEGATED_GRANT: {
        "servicePrincipalObjectId": Attribute("service_principal_object_id", "string", replaces=True),
        "resourceServicePrincipalObjectId": Attribute("resource_service_principal_object_id", "string", replaces=True),
        "claimValues": Attribute("claim_values", "set"),
    },
    # internal/services/approleassignments/app_role_assignment_resource.go; read by appRoleAssignmentResourceRead.
    APP_ROLE_ASSIGNMENT: {
        "appRoleId": Attribute("app_role_id", "string", replaces=True),
        "principalObjectId": Attribute("principal_object_id", "string", replaces=True),
        "resourceObjectId": Attribute("resource_object_id", "string", replaces=True),
    },
    # internal/services/applications/application_password_resource.go; read by applicationPasswordResourceRead
    # (dates as Graph returns them); credentials.go PasswordCredential sends dates as Go's time.RFC3339.
    PASSWORD: {
        "applicationId": Attribute("application_id", "string", replaces=True),
        "displayName": Attribute("display_name", "string", replaces=True, computed=True),
        "startDate": Attribute("start_date", "string", replaces=True, computed=True),
        "endDate": Attribute("end_date", "string", replaces=True, computed=True),
        "rotateWhenChanged": Attribute("rotate_when_changed", "map", replaces=True),
    },
    # internal/services/users/user_resource.go; read by userResourceRead (the password is never read back).
    "azuread:index/user:User": {
        "userPrincipalName": Attribute("user_principal_name", "string"),
        "displayName": Attribute("display_name", "string"),
        "mailNickname": Attribute("mail_nickname", "string", computed=True),
        "password": Attribute("password", "string", computed=True),
        "forcePasswordChange": Attribute("force_password_change", "bool"),
        "disablePasswordExpiration": Attribute("disable_password_expiration", "bool"),
        "usageLocation": Attribute("usage_location", "string"),
    },
    # internal/services/groups/group_resource.go; read by groupResourceRead.
    "azuread:index/group:Group": {
        "displayName": Attribute("display_name", "string"),
        "description": Attribute("description", "string"),
        "securityEnabled": Attribute("security_enabled", "bool"),
        "preventDuplicateNames": Attribute("prevent_duplicate_names", "bool"),
        "owners": Attribute("owners", "set", computed=True),
        "members": Attribute("members", "set", computed=True),
    },
    # internal/services/groups/group_license_resource.go (after v3.9.0): every argument ForceNew.
    "azuread:index/groupLicense:GroupLicense": {
        "groupObjectId": Attribute("group_object_id", "string", replaces=True),
        "skuId": Attribute("sku_id", "string", replaces=True),
    },
}


@dataclass(frozen=True)
class Change:
    changed: tuple[str, ...]  # the inputs whose stored form differs
    replaced_by: tuple[str, ...]  # those of them that are ForceNew

    @property
    def operation(self) -> Literal["same", "update", "replace"]:
        return "replace" if self.replaced_by else "update" if self.changed else "same"


def diff(type_token: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Change:
    """How the provider classifies going from `old` inputs (as stored) to `new` ones."""
    schema = SCHEMAS[type_token]
    unknown = sorted(set(new) - set(schema) - {"__defaults"})
    if unknown:
        raise KeyError(f"{type_token}: no schema entry for input(s) {', '.join(unknown)}")
    changed = [key for key, attribute in schema.items()
               if not (attribute.computed and key not in new)
               and stored(attribute, old.get(key)) != stored(attribute, new.get(key))]
    return Change(tuple(changed), tuple(k for k in changed if schema[k].replaces))


def stored(attribute: Attribute, value: Any) -> Any:
    """The value as SDKv2 compares it: unset strings as "", sets without order, blocks field by field."""
    if attribute.form == "string":
        return "" if value is None else value
    if attribute.form == "bool":
        return bool(value)
    if attribute.form == "map":
        return dict(value or {})
    if attribute.form == "list":
        return list(value or [])
    items = [value] if isinstance(value, Mapping) else list(value or [])  # the bridge flattens a block to an object
    if attribute.form == "block":
        return [{k: stored(a, item.get(k)) for k, a in attribute.nested.items()} for item in items[:1]]
    if attribute.nested:
        items = [{k: stored(a, item.get(k)) for k, a in attribute.nested.items()} for item in items]
    return sorted(json.dumps(item, sort_keys=True) for item in items)
