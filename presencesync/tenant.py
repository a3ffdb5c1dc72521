"""One tenant's whole PresenceSync resource graph, as a single ComponentResource.

Steps refer to the manual setup guide. Microsoft's own service principals (Skype for Business
Online, Microsoft Graph) are only looked up: they are shared by every app in the tenant, so nothing
here, `pulumi destroy` included, may change or delete them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_azuread as azuread

from presencesync.client_secrets import ClientSecret
from presencesync.clouds import endpoints_for
from presencesync.config import Settings
from presencesync.names import (
    APPLICATION_NAME,
    COMPONENT_TYPE,
    SECRET_DISPLAY_NAME,
    SERVICE_PRINCIPAL_NAME,
    consent_name,
)
from presencesync.permissions import PROFILES, ApiPermissions, PermissionNotFoundError, role_ids, scope_ids

# Builds the post-deploy hook from the settings, the stack outputs that do not depend on the client
# secret, and the resources post-deploy relies on (the program passes handover.resource_hook).
PostDeployHook = Callable[[Settings, Mapping[str, Any], Sequence[pulumi.Resource]],
                          Callable[[pulumi.ResourceHookArgs], Awaitable[None]]]


class Tenant(pulumi.ComponentResource):
    """The application, its service principal, consent, secret, owners and sync user."""

    outputs: dict[str, Any]  # the stack outputs, by their exported names

    def __init__(self, name: str, settings: Settings, post_deploy: PostDeployHook | None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=settings.protect)
        lookup = pulumi.InvokeOptions(parent=self)
        apis = PROFILES[settings.profile]

        deployer = azuread.get_client_config_output(opts=lookup)
        resource_sps = {api.app_id: azuread.get_service_principal_output(client_id=api.app_id, opts=lookup)
                        for api in apis}

        # Step 6: the sync user, existing or created (with a licence through a group).
        sync_user_id, licence = self._sync_user(settings, deployer.object_id, child, lookup)

        # Step 7: owners. The deployer is always listed: the provider removes a caller that `owners` omits,
        # which locks out a deployer that may only manage the apps it owns.
        owners = pulumi.Output.all(deployer.object_id, sync_user_id).apply(
            lambda ids: sorted({i.lower() for i in [*ids, *settings.owners]}))

        # Steps 1 to 4: the registration, its permissions, web platform and public-client setting.
        application = azuread.Application(
            APPLICATION_NAME, display_name=settings.display_name, sign_in_audience=settings.sign_in_audience,
            prevent_duplicate_names=True, owners=owners, fallback_public_client_enabled=settings.public_client,
            required_resource_accesses=[_required_access(api, resource_sps[api.app_id]) for api in apis],
            web=azuread.ApplicationWebArgs(
                redirect_uris=list(settings.redirect_uris), logout_url=settings.logout_url,
                implicit_grant=azuread.ApplicationWebImplicitGrantArgs(
                    access_token_issuance_enabled=settings.implicit_access_tokens,
                    id_token_issuance_enabled=settings.implicit_id_tokens)),
            opts=guarded)
        service_principal = azuread.ServicePrincipal(
            SERVICE_PRINCIPAL_NAME, client_id=application.client_id, owners=owners, opts=guarded)

        # Step 2's "Grant admin consent": one AllPrincipals grant per resource API for the delegated
        # scopes, one app role assignment per application permission. In the hook and manual modes
        # the post-deploy step grants or waits for consent instead.
        grants: list[pulumi.Resource] = []
        for api in apis if settings.consent == "resource" else ():
            resource_sp = resource_sps[api.app_id]
            grants.append(azuread.ServicePrincipalDelegatedPermissionGrant(
                consent_name(api), service_principal_object_id=service_principal.object_id,
                resource_service_principal_object_id=resource_sp.object_id, claim_values=list(api.scopes), opts=child))
            app_role_ids = _resolved(resource_sp.app_role_ids, api, role_ids)
            for index, role in enumerate(api.roles):
                grants.append(azuread.AppRoleAssignment(
                    consent_name(api, role), app_role_id=app_role_ids[index], opts=child,
                    principal_object_id=service_principal.object_id, resource_object_id=resource_sp.object_id))

        # Step 4's client secret(s) (client_secrets.py says which secrets and when each is replaced). A
        # relative expiry is computed anew on every run, so its end date is kept from creation. A rotated
        # secret that is replaced is left to expire on its own, so Novus keeps working until it has the new one.
        def client_secret(planned: ClientSecret, hooks: pulumi.ResourceHookBinding | None = None
                          ) -> azuread.ApplicationPassword:
            return azuread.ApplicationPassword(
                planned.name, application_id=application.id, display_name=SECRET_DISPLAY_NAME,
                start_date=planned.start_date, end_date=planned.end_date, rotate_when_changed=planned.keepers,
                opts=pulumi.ResourceOptions(
                    parent=self, ignore_changes=["endDate"] if planned.end_date_fixed_at_creation else None,
                    retain_on_delete=settings.secret_rotation_days is not None, hooks=hooks))

        passwords = {p.name: client_secret(p) for p in settings.client_secrets.secrets if not p.current}

        # Step 5 and 8: what the Novus presence provider configuration page asks for, and the IDs post-deploy
        # needs. None of these depend on the current secret, which its post-deploy hook relies on (below).
        tenant_domain = (pulumi.Output.from_input(settings.tenant_domain) if settings.tenant_domain
                         else azuread.get_domains_output(only_default=True, opts=lookup).domains
                         .apply(_default_domain))
        endpoints = endpoints_for(settings.environment)
        known: dict[str, Any] = {
            "novus": {"tenantId": tenant_domain, "clientId": application.client_id,
                      "userName": pulumi.Output.from_input(settings.sync_user.user_principal_name),
                      "password": pulumi.Output.secret(settings.sync_user_password.reveal())},
            "directoryTenantId": deployer.tenant_id, "applicationObjectId": application.object_id,
            "servicePrincipalObjectId": service_principal.object_id,
            "adminConsentUrl": pulumi.Output.all(deployer.tenant_id, application.client_id).apply(
                lambda ids: endpoints.admin_consent_url(ids[0], ids[1])),
        }
        if (previous := settings.client_secrets.previous) is not None:
            known["previousClientSecretEndDate"] = passwords[previous.name].end_date
            known["nextSecretRotation"] = settings.client_secrets.next_rotation

        # The post-deploy hook runs when the current secret is created or replaced. The engine runs it
        # before it answers that registration, so it takes the secret's own values from its argument and
        # waits only on the rest, which the engine answers meanwhile: so the secret needs no dependency on
        # the consent, and is created beside it rather than after it.
        hooks = None
        if post_deploy is not None:
            hook = pulumi.ResourceHook("post-deploy", post_deploy(
                settings, known, [service_principal, *grants, *licence, *passwords.values()]))
            hooks = pulumi.ResourceHookBinding(after_create=[hook], after_update=[hook])
        secret = client_secret(settings.client_secrets.current, hooks)

        # The hand-over map is secret as a whole: pipelines mask only wholly secret outputs.
        self.outputs = {**known, "novus": pulumi.Output.secret({**known["novus"], "clientSecret": secret.value}),
                        "clientSecretEndDate": secret.end_date}
        self.register_outputs(self.outputs)

    def _sync_user(self, settings: Settings, deployer_id: pulumi.Output[str],
                   child: pulumi.ResourceOptions, lookup: pulumi.InvokeOptions
                   ) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        """The sync user's object ID, and the resources that license it."""
        wanted = settings.sync_user
        if not wanted.create:
            return azuread.get_user_output(user_principal_name=wanted.user_principal_name,
                                           opts=lookup).object_id, []
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
            return user.object_id, [group, azuread.GroupLicense(
                "sync-user-licence", group_object_id=group.object_id, sku_id=wanted.license_sku_id, opts=child)]
        return user.object_id, []


def _required_access(api: ApiPermissions, resource_sp: pulumi.Output[azuread.GetServicePrincipalResult]
                     ) -> azuread.ApplicationRequiredResourceAccessArgs:
    access = azuread.ApplicationRequiredResourceAccessResourceAccessArgs
    scopes = _resolved(resource_sp.oauth2_permission_scope_ids, api, scope_ids)
    roles = _resolved(resource_sp.app_role_ids, api, role_ids)
    accesses = pulumi.Output.all(scopes, roles).apply(lambda ids: [
        *(access(id=i, type="Scope") for i in ids[0]), *(access(id=i, type="Role") for i in ids[1])])
    return azuread.ApplicationRequiredResourceAccessArgs(resource_app_id=api.app_id, resource_accesses=accesses)


def _resolved(offered: pulumi.Output[dict[str, str]], api: ApiPermissions,
              by_name: Callable[[ApiPermissions, dict[str, str]], list[str]]) -> pulumi.Output[list[str]]:
    """Permission IDs by name from what the resource's service principal offers; a missing one stops the run."""
    def resolve(ids: dict[str, str]) -> list[str]:
        try:
            return by_name(api, ids)
        except PermissionNotFoundError as missing:
            raise pulumi.RunError(str(missing)) from None

    return offered.apply(resolve)


def _default_domain(domains: list[azuread.outputs.GetDomainsDomainResult]) -> str:
    if not domains:
        raise pulumi.RunError("the tenant reports no default domain; set presencesync:tenantDomain "
                              "to its primary domain (Entra admin center, Overview)")
    return domains[0].domain_name
