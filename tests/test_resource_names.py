"""An upgrade must not rename or move what an existing stack has: the example stack and a graph stack
register the same resource URNs as before the post-deploy and provider-schema change (recorded below from
commit 4ab9465's program under the mock engine); a rename or a new parent needs an alias."""

from __future__ import annotations

from conftest import EXAMPLE_STACK, PASSWORD, needs_example_stack

from presencesync.offline_plan import TenantFacts, run_program
from presencesync.stack_file import read_stack_config

TENANT = "urn:pulumi:dev::presencesync::pulumi:pulumi:Stack$presencesync:index:Tenant::dev"
CHILD = "urn:pulumi:dev::presencesync::presencesync:index:Tenant$azuread:index/"
EXAMPLE = [
    "application:Application::application",
    "applicationPassword:ApplicationPassword::client-secret",
    "group:Group::sync-user-licence",
    "groupLicense:GroupLicense::sync-user-licence",
    "servicePrincipal:ServicePrincipal::service-principal",
    "servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant::consent-microsoft-graph",
    "servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant::consent-skype-for-business-online",
    "user:User::sync-user",
]
GRAPH_ROTATING = [
    "appRoleAssignment:AppRoleAssignment::consent-microsoft-graph-presence-readwrite-all",
    "appRoleAssignment:AppRoleAssignment::consent-microsoft-graph-user-readbasic-all",
    "application:Application::application",
    "applicationPassword:ApplicationPassword::client-secret-a",
    "applicationPassword:ApplicationPassword::client-secret-b",
    "group:Group::sync-user-licence",
    "groupLicense:GroupLicense::sync-user-licence",
    "servicePrincipal:ServicePrincipal::service-principal",
    "servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant::consent-microsoft-graph",
    "user:User::sync-user",
]


def _urns(config: dict[str, str], facts: TenantFacts) -> list[str]:
    plan = run_program(config, facts, secret_keys=("presencesync:syncUserPassword",), stack="dev")
    return sorted(r.urn for r in plan.resources)


@needs_example_stack
def test_the_example_stack_and_a_graph_stack_keep_their_resource_urns(facts):
    example_user = {"presencesync@contoso.com": "5e5e5e5e-0000-4000-8000-000000000005"}
    facts = TenantFacts(**{**facts.__dict__, "users": {**facts.users, **example_user}})
    example = {**read_stack_config(EXAMPLE_STACK).values, "presencesync:syncUserPassword": PASSWORD}
    graph = {**example, "presencesync:profile": "graph", "presencesync:implicitGrant": "{}",
             "presencesync:publicClient": "false", "presencesync:secretExpiry": "",
             "presencesync:secretRotationDays": "180"}
    assert _urns(example, facts) == sorted([TENANT, *(CHILD + u for u in EXAMPLE)])
    assert _urns(graph, facts) == sorted([TENANT, *(CHILD + u for u in GRAPH_ROTATING)])
