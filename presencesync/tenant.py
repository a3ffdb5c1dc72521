"""One tenant's whole PresenceSync resource graph, as a single ComponentResource.

Steps refer to the manual setup guide. Microsoft's own service principals (Skype for Business
Online, Microsoft Graph) are only looked up: they are shared by every app in the tenant, so nothing
here, `pulumi destroy` included, may change or delete them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pulumi
import pulumi_azuread as azuread

from presencesync.client_secrets import ClientSecret
from presencesync.clouds import endpoints_for
from presencesync.config import Settings
from presencesync.deployment_hooks import ChangeWatch, profile_switch_guard
from presencesync.names import (
    APPLICATION_NAME,
    COMPONENT_TYPE,
    SECRET_DISPLAY_NAME,
    SERVICE_PRINCIPAL_NAME,
    consent_name,
)
from presencesync.permissions import PROFILES, ApiPermissions, PermissionNotFoundError, Profile, role_ids, scope_ids
from presencesync.sync_user import sync_user

# Builds the post-deploy step from the settings; it takes the stack outputs, resolved (the program
# passes handover.post_deploy_step). deployment_hooks.py says when it runs.
PostDeployStep = Callable[[Settings], Callable[[Mapping[str, Any]], Awaitable[None]]]


class Tenant(pulumi.ComponentResource):
    """The application, its service principal, consent, secret, owners and sync user."""

    outputs: dict[str, Any]  # the stack outputs, by their exported names

    def __init__(self, name: str, settings: Settings, post_deploy: PostDeployStep | None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        # Every resource tells `watch` when this deployment creates, updates or replaces it.
        watch = ChangeWatch() if post_deploy is not None else None
        hooks = watch.binding if watch is not None else None
        child = pulumi.ResourceOptions(parent=self, hooks=hooks)
        lookup = pulumi.InvokeOptions(parent=self)
        apis = PROFILES[settings.profile]
        endpoints = endpoints_for(settings.environment)

        deployer = azuread.get_client_config_output(opts=lookup)
        resource_sps = _resource_service_principals(settings.profile, lookup)

        # Step 6: the sync user, existing or created (with a licence through a group).
        sync_user_id, user_resources = sync_user(settings, deployer.object_id, child, lookup)

        # Step 7: owners. The deployer is always listed: the provider removes a caller that `owners` omits,
        # which locks out a deployer that may only manage the apps it owns.
        owners = pulumi.Output.all(deployer.object_id, sync_user_id).apply(
            lambda ids: sorted({i.lower() for i in [*ids, *settings.owners]}))

        # Steps 1 to 4: the registration, its permissions, web platform and public-client setting. A change of
        # profile is refused before the provider updates it where consent would be lost (deployment_hooks.py).
        changed: list[pulumi.ResourceHook | Callable[[pulumi.ResourceHookArgs], Awaitable[None] | None]] = (
            [watch.hook] if watch is not None else [])
        app_hooks = pulumi.ResourceHookBinding(after_create=changed, after_update=changed, before_update=[
            profile_switch_guard(settings.consent, deployer.tenant_id, endpoints.admin_consent_url)])
        application = azuread.Application(
            APPLICATION_NAME, display_name=settings.display_name, sign_in_audience=settings.sign_in_audience,
            prevent_duplicate_names=True, owners=owners, fallback_public_client_enabled=settings.public_client,
            required_resource_accesses=[_required_access(api, resource_sps[api.app_id]) for api in apis],
            web=azuread.ApplicationWebArgs(
                redirect_uris=list(settings.redirect_uris), logout_url=settings.logout_url,
                implicit_grant=azuread.ApplicationWebImplicitGrantArgs(
                    access_token_issuance_enabled=settings.implicit_access_tokens,
                    id_token_issuance_enabled=settings.implicit_id_tokens)),
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect, hooks=app_hooks))
        service_principal = azuread.ServicePrincipal(
            SERVICE_PRINCIPAL_NAME, client_id=application.client_id, owners=owners,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=settings.protect)))

        # Step 2's "Grant admin consent": one AllPrincipals grant per resource API for the delegated
        # scopes, one app role assignment per application permission. In the hook and manual modes
        # the post-deploy step grants or waits for consent instead. A consent the stack stops declaring (a
        # change of profile or of consent mode) is left in Entra ID, so Novus keeps signing in until it has moved
        # (README, "Moving a tenant to Graph presence"); Entra ID removes it with the service principal.
        grants: list[pulumi.CustomResource] = []
        kept = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True))
        for api in apis if settings.consent == "resource" else ():
            resource_sp = resource_sps[api.app_id]
            grants.append(azuread.ServicePrincipalDelegatedPermissionGrant(
                consent_name(api), service_principal_object_id=service_principal.object_id,
                resource_service_principal_object_id=resource_sp.object_id, claim_values=list(api.scopes), opts=kept))
            app_role_ids = _resolved(resource_sp.app_role_ids, api, role_ids)
            for index, role in enumerate(api.roles):
                grants.append(azuread.AppRoleAssignment(
                    consent_name(api, role), app_role_id=app_role_ids[index], opts=kept,
                    principal_object_id=service_principal.object_id, resource_object_id=resource_sp.object_id))

        # Step 4's client secret(s) (client_secrets.py says which secrets and when each is replaced). A
        # relative expiry is computed anew on every run, so its end date is kept from creation. A rotated
        # secret that is replaced is left to expire on its own, so Novus keeps working until it has the new one.
        # No start date: Entra ID starts a secret when it is added (addPassword's default), and a rotated
        # secret's first run may come days into its period, when a start date would lie in the past.
        def client_secret(planned: ClientSecret) -> azuread.ApplicationPassword:
            return azuread.ApplicationPassword(
                planned.name, application_id=application.id, display_name=SECRET_DISPLAY_NAME,
                end_date=planned.end_date, rotate_when_changed=planned.keepers,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    ignore_changes=["endDate"] if planned.end_date_fixed_at_creation else None,
                    retain_on_delete=settings.secret_rotation_days is not None)))

        passwords = {p.name: client_secret(p) for p in settings.client_secrets.secrets}
        secret = passwords[settings.client_secrets.current.name]

        # Step 5 and 8: what the Novus presence provider configuration page asks for, and the IDs post-deploy needs.
        tenant_domain = (pulumi.Output.from_input(settings.tenant_domain) if settings.tenant_domain
                         else azuread.get_domains_output(only_default=True, opts=lookup).domains
                         .apply(_default_domain))
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

        # The hand-over map is secret as a whole: pipelines mask only wholly secret outputs.
        self.outputs = {**known, "novus": pulumi.Output.secret({**known["novus"], "clientSecret": secret.value}),
                        "clientSecretEndDate": secret.end_date}
        self.register_outputs(self.outputs)
        if watch is not None and post_deploy is not None:
            watch.after_all([application, service_principal, *grants, *user_resources, *passwords.values()],
                            self.outputs, post_deploy(settings))


def _resource_service_principals(profile: Profile, lookup: pulumi.InvokeOptions
                                 ) -> dict[str, pulumi.Output[azuread.GetServicePrincipalResult]]:
    """The resource APIs' service principals, read once the tenant is known to have each (else one line)."""
    apis = PROFILES[profile]
    found = azuread.get_service_principals_output(client_ids=[api.app_id for api in apis], ignore_missing=True,
                                                  opts=lookup)

    def all_there(result: azuread.GetServicePrincipalsResult) -> bool:
        have = {sp.client_id for sp in result.service_principals}
        for api in apis:
            if api.app_id not in have:  # Skype's: retired, and missing in tenants that never had it
                raise pulumi.RunError(
                    f"presencesync:profile: {profile} needs the {api.api} service principal (app ID {api.app_id}), "
                    f"which the tenant does not have: add it with az ad sp create --id {api.app_id}, or keep profile "
                    "graph")
        return True

    def read(app_id: str) -> pulumi.Output[azuread.GetServicePrincipalResult]:
        return found.apply(all_there).apply(
            lambda _: azuread.get_service_principal_output(client_id=app_id, opts=lookup))

    return {api.app_id: read(api.app_id) for api in apis}


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
