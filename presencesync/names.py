"""What a tenant's resource graph is called: the component type, the resources' names, the azuread type
tokens and the sign-in audiences. The program, `adopt`, the manifest and the policy pack all name the
same resources, so the names live here once."""

from __future__ import annotations

import re

from presencesync.permissions import ApiPermissions

COMPONENT_TYPE = "presencesync:index:Tenant"
APPLICATION_NAME = "application"
SERVICE_PRINCIPAL_NAME = "service-principal"
SECRET_DISPLAY_NAME = "presencesync (Novus)"  # the client secrets' display name in Entra ID

# The azuread provider's type tokens, as the engine, policies and import files see them.
APPLICATION = "azuread:index/application:Application"
SERVICE_PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
DELEGATED_GRANT = "azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant"
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"

AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs")
PERSONAL_AUDIENCES = ("AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount")


def consent_name(api: ApiPermissions, role: str = "") -> str:
    """The resource name of an API's delegated grant, or of one of its app role assignments."""
    return "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in ("consent", api.api, role) if part)
