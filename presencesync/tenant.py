"""One tenant's whole PresenceSync resource graph, as a single ComponentResource.

Steps refer to the manual setup guide. Microsoft's own service principals (Skype for Business
Online, Microsoft Graph) are only looked up: they are shared by every app in the tenant, so nothing
here, `pulumi destroy` included, may change or delete them.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_azuread as azuread

from presencesync.clouds import endpoints_for
from presencesync.config import Settings
from presencesync.permissions import PROFILES, ApiPermissions, PermissionNotFoundError, scope_ids
from presencesync.postdeploy import resource_hook

COMPONENT_TYPE = "presencesync:index:Tenant"
SECRET_DISPLAY_NAME = "presencesync (Novus)"


class Tenant(pulumi.ComponentResource):
    """The application, its service principal, consent, secret, owners and sync user."""

    novus: dict[str, pulumi.Output[str]]
    directory_tenant_id: pulumi.Output[str]
    application_object_id: pulumi.Output[str]
    service_principal_object_id: pulumi.Output[str]
    client_secret_end_date: pulumi.Output[str]
    admin_consent_url: pulumi.Output[str]
    outputs: dict[str, Any]  # the stack outputs, by their exported names

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=settings.protect)
        lookup = pulumi.InvokeOptions(parent=self)
        apis = PROFILES[settings.profile]

        deployer = azuread.get_client_config_output(opts=lookup)
        resource_sps = {api.app_id: azuread.get_service_principal_output(client_id=api.app_id, opts=lookup)
                        for api in apis}

        # Step 6: the sync user, existing or created (with a licence through a group).
        sync_user_id = self._sync_user(settings, deployer.object_id, child, lookup)

        # Step 7: owners. The deployer is always listed, or the provider would remove it (facts.md).
        owners = pulumi.Output.all(deployer.object_id, sync_user_id).apply(
            lambda ids: sorted({i.lower() for i in [*ids, *settings.owners]}))

        # Steps 1 to 4: the registration, its permissions, web platform and public-client setting.
        application = azuread.Application(
            "application",
            display_name=settings.display_name,
            sign_in_audience=settings.sign_in_audience,
            prevent_duplicate_names=True,
            owners=owners,
            required_resource_accesses=[_required_access(api, resource_sps[api.app_id]) for api in apis],
            web=azuread.ApplicationWebArgs(
                redirect_uris=list(settings.redirect_uris),
                logout_url=settings.logout_url,
                implicit_grant=azuread.ApplicationWebImplicitGrantArgs(
                    access_token_issuance_enabled=settings.implicit_access_tokens,
                    id_token_issuance_enabled=settings.implicit_id_tokens,
                ),
            ),
            fallback_public_client_enabled=settings.public_client,
            opts=guarded,
        )
        service_principal = azuread.ServicePrincipal(
            "service-principal", client_id=application.client_id, owners=owners, opts=guarded)

        # Step 2's "Grant admin consent": one AllPrincipals grant per resource API. In the hook and
        # manual modes the post-deploy step grants or waits for consent instead.
        grants = []
        if settings.consent == "resource":
            for api in apis:
                grants.append(azuread.ServicePrincipalDelegatedPermissionGrant(
                    f"consent-{_slug(api.api)}",
                    service_principal_object_id=service_principal.object_id,
                    resource_service_principal_object_id=resource_sps[api.app_id].object_id,
                    claim_values=list(api.scopes),
                    opts=child,
                ))

        # Step 4's client secret, created last so the post-deploy hook runs once all else exists. A
        # relative expiry is computed anew on every run, so the end date is ignored after creation;
        # changing `secretExpiry` itself replaces the secret.
        hooks = None
        if settings.post_deploy:
            hook = pulumi.ResourceHook("post-deploy", resource_hook(settings, lambda: self.outputs))
            hooks = pulumi.ResourceHookBinding(after_create=[hook], after_update=[hook])
        secret = azuread.ApplicationPassword(
            "client-secret",
            application_id=application.id,
            display_name=SECRET_DISPLAY_NAME,
            end_date=settings.secret_end_date,
            rotate_when_changed={"secretExpiry": settings.secret_expiry},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["endDate"],
                                        depends_on=[service_principal, *grants], hooks=hooks),
        )

        # Step 5 and 8: what the Novus "UCWA Presence Provider Configuration" page asks for.
        tenant_domain = (pulumi.Output.from_input(settings.tenant_domain) if settings.tenant_domain
                         else azuread.get_domains_output(only_default=True, opts=lookup).domains
                         .apply(_default_domain))
        endpoints = endpoints_for(settings.environment)
        self.novus = {
            "tenantId": tenant_domain,
            "clientId": application.client_id,
            "clientSecret": pulumi.Output.secret(secret.value),
            "userName": pulumi.Output.from_input(settings.sync_user.user_principal_name),
            "password": pulumi.Output.secret(settings.sync_user_password.reveal()),
        }
        self.directory_tenant_id = deployer.tenant_id
        self.application_object_id = application.object_id
        self.service_principal_object_id = service_principal.object_id
        self.client_secret_end_date = secret.end_date
        self.admin_consent_url = pulumi.Output.all(deployer.tenant_id, application.client_id).apply(
            lambda ids: endpoints.admin_consent_url(ids[0], ids[1]))
        self.outputs = {
            "novus": self.novus,
            "directoryTenantId": self.directory_tenant_id,
            "applicationObjectId": self.application_object_id,
            "servicePrincipalObjectId": self.service_principal_object_id,
            "clientSecretEndDate": self.client_secret_end_date,
            "adminConsentUrl": self.admin_consent_url,
        }
        self.register_outputs(self.outputs)

    def _sync_user(self, settings: Settings, deployer_id: pulumi.Output[str],
                   child: pulumi.ResourceOptions, lookup: pulumi.InvokeOptions) -> pulumi.Output[str]:
        wanted = settings.sync_user
        if not wanted.create:
            return azuread.get_user_output(user_principal_name=wanted.user_principal_name,
                                           opts=lookup).object_id
        user = azuread.User(
            "sync-user",
            user_principal_name=wanted.user_principal_name,
            display_name=f"{settings.display_name} sync user",
            mail_nickname=wanted.user_principal_name.split("@")[0],
            password=pulumi.Output.secret(settings.sync_user_password.reveal()),
            force_password_change=False,
            disable_password_expiration=True,
            usage_location=wanted.usage_location,
            opts=child,
        )
        if wanted.license_sku_id:
            group = azuread.Group(
                "sync-user-licence",
                display_name=f"{settings.display_name} sync user licence",
                description="Gives the PresenceSync sync user its Office 365 licence.",
                security_enabled=True,
                prevent_duplicate_names=True,
                owners=[deployer_id],
                members=[user.object_id],
                opts=child,
            )
            azuread.GroupLicense("sync-user-licence", group_object_id=group.object_id,
                                 sku_id=wanted.license_sku_id, opts=child)
        return user.object_id


def _required_access(api: ApiPermissions, resource_sp: pulumi.Output[azuread.GetServicePrincipalResult]
                     ) -> azuread.ApplicationRequiredResourceAccessArgs:
    accesses = resource_sp.oauth2_permission_scope_ids.apply(lambda offered: [
        azuread.ApplicationRequiredResourceAccessResourceAccessArgs(id=i, type="Scope")
        for i in _resolve(api, offered)])
    return azuread.ApplicationRequiredResourceAccessArgs(resource_app_id=api.app_id, resource_accesses=accesses)


def _resolve(api: ApiPermissions, offered: dict[str, str]) -> list[str]:
    try:
        return scope_ids(api, offered)
    except PermissionNotFoundError as missing:
        raise pulumi.RunError(str(missing)) from None


def _default_domain(domains: list[azuread.outputs.GetDomainsDomainResult]) -> str:
    if not domains:
        raise pulumi.RunError("the tenant reports no default domain; set presencesync:tenantDomain "
                              "to its primary domain (Entra admin center, Overview)")
    return domains[0].domain_name


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
