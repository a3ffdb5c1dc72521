"""What the azuread provider replaces and what its read stores, for every input the program sets.

The table is presencesync/provider_schema.py, read off hashicorp/terraform-provider-azuread v3.9.0 (the
upstream pulumi-azuread's main branch bridges: provider/go.mod requires
terraform-provider-azuread v1.6.1-0.20260618210114-df2a07a33712, the v3.9.0 tag's commit; the schemas of
these resources are unchanged on upstream's main branch since): ForceNew in each resource's schema replaces
it. The installed pulumi-azuread (6.11.1, which already has `azuread_group_license`, added upstream after
v3.9.0) is checked against it through its generated docs, which say "forces a new resource" for ForceNew.
Then plans of the same stack before and after a change are compared the way the provider's Diff would
(provider_schema.diff): which resources update in place, which are replaced, created or deleted.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from importlib.metadata import version
from typing import Any

import pytest
from conftest import GRAPH_SCOPES, SKYPE_SCOPES

from presencesync import provider_schema
from presencesync.offline_plan import Plan, Registration
from presencesync.provider_schema import SCHEMAS

LICENSED_USER = {"userPrincipalName": "sync@contoso.com", "create": True, "usageLocation": "DK",
                 "licenseSkuId": "18181a46-0d4e-45cd-891e-60aabd171b4e"}
VARIANTS: list[dict[str, Any]] = [
    {}, {"profile": "graph"}, {"consent": "hook"}, {"profile": "graph", "consent": "manual"},
    {"secretRotationDays": "180"}, {"secretExpiry": "never"}, {"syncUser": LICENSED_USER},
    {"redirectUris": ["https://novus.contoso.com/cb"], "logoutUrl": "https://novus.contoso.com/out",
     "owners": ["3F3F3F3F-7777-4777-8777-777777777777"]},
]
# Inputs the schema makes ForceNew whose generated SDK docs do not say so (the docs are hand-written upstream).
DOCS_SILENT = {("ServicePrincipal", "clientId")}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(o) or "defaults")
def test_every_input_the_program_sets_is_in_the_provider_table(plan, overrides):
    for resource in plan(**overrides).resources:
        if resource.type.startswith("azuread:"):
            assert resource.type in SCHEMAS, resource.type
            assert set(resource.inputs) <= set(SCHEMAS[resource.type]), (resource.name, resource.inputs.keys())


def test_the_table_agrees_with_the_installed_provider_sdk():
    """pulumi_azuread's Args docs (generated from upstream's docs) say "forces a new resource" where ForceNew."""
    assert version("pulumi-azuread") == "6.11.1"  # as requirements.txt pins it
    for token, attributes in SCHEMAS.items():
        kind = token.rsplit(":", 1)[-1]
        module = importlib.import_module(f"pulumi_azuread.{_snake(kind)}")
        args = getattr(module, f"{kind}Args", None) or getattr(module, f"{kind}InitArgs")  # a clash with a type's name
        docs = inspect.getsource(args.__init__)
        for name, attribute in attributes.items():
            line = re.search(rf":param [^\n]*? {_snake(name)}: ([^\n]*)", docs)
            assert line is not None, (kind, name)
            says_replaces = "forces a new resource" in line.group(1)
            if (kind, name) in DOCS_SILENT:
                assert attribute.replaces and not says_replaces
            else:
                assert says_replaces == attribute.replaces, (kind, name, line.group(1))


def changes(before: Plan, after: Plan) -> dict[str, Any]:
    """What `pulumi preview` would show going from `before` (as the state) to `after`."""
    old = {r.key: r for r in before.resources if r.type.startswith("azuread:")}
    new = {r.key: r for r in after.resources if r.type.startswith("azuread:")}
    steps = {_label(key): provider_schema.diff(key[1], old[key].inputs, new[key].inputs)
             for key in old.keys() & new.keys()}
    return {"update": {n: set(c.changed) for n, c in steps.items() if c.operation == "update"},
            "replace": {n: set(c.replaced_by) for n, c in steps.items() if c.operation == "replace"},
            "create": {_label(key) for key in new.keys() - old.keys()},
            "delete": {_label(key) for key in old.keys() - new.keys()}}


def _label(key: tuple[str, str, str]) -> str:
    """A resource's name; the sync user's group and its licence share one, so the licence says so."""
    return f"{key[2]} (licence)" if key[1].endswith("GroupLicense") else key[2]


HELD_BY_NOVUS = {"application", "service-principal", "client-secret"}  # client ID and secret


@pytest.mark.parametrize("consent", ["resource", "hook"])
def test_ucwa_to_graph_updates_in_place_and_keeps_the_client_id_and_secret(plan, consent):
    ucwa = plan(consent=consent)
    shown = changes(ucwa, plan(consent=consent, profile="graph"))
    assert shown["replace"] == {}
    assert shown["update"]["application"] == {"requiredResourceAccesses", "web", "fallbackPublicClientEnabled"}
    assert "service-principal" not in shown["update"] and "client-secret" not in shown["update"]
    if consent == "resource":
        # The Skype grant leaves the stack but stays in Entra ID, so Novus's UCWA sign-ins go on until it moves.
        assert all(r.retain_on_delete for r in ucwa.of_type(provider_schema.DELEGATED_GRANT))
        assert shown["update"]["consent-microsoft-graph"] == {"claimValues"}
        assert shown["create"] == {"consent-microsoft-graph-presence-readwrite-all",
                                   "consent-microsoft-graph-user-readbasic-all"}
        assert shown["delete"] == {"consent-skype-for-business-online"}
    else:  # consent is granted by post-deploy, not declared
        assert shown["create"] == shown["delete"] == set()
    assert not HELD_BY_NOVUS & (shown["create"] | shown["delete"])


def test_turning_rotation_on_creates_two_slots_and_deletes_the_single_secret(plan):
    shown = changes(plan(), plan(secretRotationDays="180"))
    assert shown["update"] == shown["replace"] == {}
    assert shown["create"] == {"client-secret-a", "client-secret-b"}
    # The one thing Novus holds that goes: the preview lists the delete, and the README says how to keep it.
    assert shown["delete"] == {"client-secret"}


def test_changing_the_display_name_updates_in_place(plan):
    shown = changes(plan(syncUser=LICENSED_USER), plan(syncUser=LICENSED_USER, displayName="Novus Presence"))
    assert shown["replace"] == {} and shown["create"] == shown["delete"] == set()
    assert shown["update"] == {"application": {"displayName"}, "sync-user": {"displayName"},
                               "sync-user-licence": {"displayName"}}


def test_adding_an_owner_updates_in_place(plan):
    shown = changes(plan(), plan(owners=["3f3f3f3f-7777-4777-8777-777777777777"]))
    assert shown == {"update": {"application": {"owners"}, "service-principal": {"owners"}}, "replace": {},
                     "create": set(), "delete": set()}


def test_a_forcenew_change_is_a_replace():
    """The classification can fail: a new application for the secret, or a new SKU, replaces."""
    password = {"applicationId": "/applications/a", "displayName": "x", "endDate": "2027-01-01T00:00:00Z"}
    change = provider_schema.diff(provider_schema.PASSWORD, password, {**password, "applicationId": "/applications/b"})
    assert change.operation == "replace" and change.replaced_by == ("applicationId",)
    licence = "azuread:index/groupLicense:GroupLicense"
    assert provider_schema.diff(licence, {"groupObjectId": "g", "skuId": "a"},
                                {"groupObjectId": "g", "skuId": "b"}).operation == "replace"


GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def read_back(resource: Registration) -> dict[str, Any]:
    """What the provider's read stores for a resource the program registered (Graph's answer).

    applicationResourceRead / servicePrincipalResourceRead: owners from ListOwners, object IDs as Graph
    returns them (lower case), in Graph's order; flattenApplicationWeb: logout_url "" when Graph has none,
    redirect_uris in Graph's order; flattenApplicationRequiredResourceAccess: IDs and types as Graph returns
    them, resource_access in the order sent; applicationPasswordResourceRead: start_date and end_date as
    Graph's DateTimeOffset text, always UTC ("2014-01-01T00:00:00Z", Graph passwordCredential), start_date
    set by Graph when none was sent (addPassword: default "now"); servicePrincipalDelegatedPermission
    GrantResourceRead: claim values split from the scope string.
    """
    def graph(value: Any) -> Any:
        if isinstance(value, str):
            return GUID.sub(lambda m: m.group(0).lower(), value)
        if isinstance(value, list):
            return [graph(v) for v in reversed(value)]  # a set: Graph's order is its own
        if isinstance(value, dict):
            return {k: graph(v) for k, v in value.items()}
        return value

    stored = graph(resource.inputs)
    if resource.type == provider_schema.APPLICATION:
        stored["web"] = {"logoutUrl": "", **stored["web"]}
        for access in stored["requiredResourceAccesses"]:  # a list inside the set: kept in the order sent
            access["resourceAccesses"] = list(reversed(access["resourceAccesses"]))
    if resource.type == provider_schema.PASSWORD:
        stored.setdefault("startDate", "2026-12-06T09:41:17.1234567Z")
    return stored


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(o) or "defaults")
def test_the_preview_after_an_up_is_quiet(plan, overrides):
    """The program sends each input in the form the provider's read stores it, so nothing differs."""
    first = plan(**overrides)
    again = plan(**overrides)
    as_read = {r.key: read_back(r) for r in first.resources if r.type.startswith("azuread:")}
    for resource in again.resources:
        if resource.type.startswith("azuread:"):
            change = provider_schema.diff(resource.type, as_read[resource.key], resource.inputs)
            assert change.operation == "same", (resource.name, change)


def test_ids_are_sent_in_lower_case_and_dates_as_graph_stores_them(plan):
    result = plan(owners=["3F3F3F3F-7777-4777-8777-777777777777"], secretExpiry="2027-06-30T02:00:00+02:00")
    sent = json.dumps([r.inputs for r in result.resources], default=str)
    assert all(guid == guid.lower() for guid in GUID.findall(sent))
    password = result.one(provider_schema.PASSWORD).inputs
    assert password["endDate"] == "2027-06-30T00:00:00Z" and "startDate" not in password
    rotated = plan(secretRotationDays="31").of_type(provider_schema.PASSWORD)
    assert all("startDate" not in r.inputs and r.inputs["endDate"].endswith("T00:00:00Z") for r in rotated)


def test_a_rotated_secret_without_a_start_date_is_not_replaced(plan):
    """Earlier versions sent the period's first day as start_date; it is Optional + Computed, so leaving it
    out keeps what the state has (no replace), and a secret created later starts when Entra ID adds it
    (Graph addPassword: startDateTime "Optional. The default value is now"; the docs say nothing of a start
    in the past, so the program never sends one)."""
    for secret in plan(secretRotationDays="31").of_type(provider_schema.PASSWORD):
        stored = {**secret.inputs, "startDate": "2026-10-27T00:00:00Z"}
        assert provider_schema.diff(provider_schema.PASSWORD, stored, secret.inputs).operation == "same"


def test_scope_ids_come_from_the_tenant_as_it_spells_them(plan):
    accesses = {a["resourceAppId"]: a for a in plan().one(provider_schema.APPLICATION).inputs["requiredResourceAccesses"]}
    ids = {access["id"] for a in accesses.values() for access in a["resourceAccesses"]}
    assert ids == {SKYPE_SCOPES["Contacts.ReadWrite"], SKYPE_SCOPES["User.ReadWrite"], GRAPH_SCOPES["User.Read"]}
