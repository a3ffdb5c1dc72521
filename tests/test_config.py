"""Config validation: every bad-input case gives one line naming the key and the fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import PASSWORD, needs_example_stack, stack_config

from presencesync.config import ConfigError, Secret, load_settings
from presencesync.config_keys import DEFAULTS, KNOWN_KEYS, REQUIRED, SECRET_KEYS, UNDECLARED

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)


def problems(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(stack_config(**overrides), now=NOW)
    return raised.value.problems


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"owners": ["not-a-guid"]}, "presencesync:owners[0]: 'not-a-guid' is not an object ID (GUID)"),
    ({"syncUser": {"userPrincipalName": "sync at contoso"}}, "presencesync:syncUser.userPrincipalName: 'sync at contoso' is not a user principal name"),
    ({"redirectUris": ["http://novus.contoso.com/cb"]}, "presencesync:redirectUris[0]: 'http://novus.contoso.com/cb' is plain http"),
    ({"logoutUrl": "http://novus.contoso.com/out"}, "presencesync:logoutUrl: 'http://novus.contoso.com/out' is not an https URL"),
    ({"secretExpiry": "2020-01-01T00:00:00Z"}, "presencesync:secretExpiry: '2020-01-01T00:00:00Z' is not 1y, 2y, never or an RFC 3339 date in the future"),
    ({"secretExpiry": "3y"}, "presencesync:secretExpiry: '3y' is not 1y, 2y, never"),
    ({"secretExpiry": "2027-13-45"}, "presencesync:secretExpiry: '2027-13-45'"),
    ({"consent": "admin"}, "presencesync:consent: 'admin' is not one of resource, hook, manual"),
    ({"profile": "teams"}, "presencesync:profile: 'teams' is not one of ucwa, graph"),
    ({"profile": "graph", "implicitGrant": {"idTokens": True}}, "presencesync:implicitGrant: must stay off with profile graph"),
    ({"secretRotationDays": "30"}, "presencesync:secretRotationDays: '30' is not a whole number of days from 31 to 365"),
    ({"secretRotationDays": "half a year"}, "presencesync:secretRotationDays: 'half a year' is not a whole number of days"),
    ({"secretRotationDays": "180", "secretExpiry": "1y"},
     "presencesync:secretRotationDays: cannot be combined with presencesync:secretExpiry"),
    ({"signInAudience": "PersonalMicrosoftAccount"}, "presencesync:signInAudience: 'PersonalMicrosoftAccount' admits personal Microsoft accounts"),
    ({"signInAudience": "AzureADandPersonalMicrosoftAccount"}, "admits personal Microsoft accounts"),
    ({"signInAudience": "Everyone"}, "presencesync:signInAudience: 'Everyone' is not one of"),
    ({"syncUser": None}, "presencesync:syncUser: is missing; set it with pulumi config set --path"),
    ({"syncUserPassword": None}, "presencesync:syncUserPassword: is missing; set it with pulumi config set --secret"),
    ({"syncUser": {"create": True}}, "presencesync:syncUser.userPrincipalName: is missing"),
    ({"syncUser": "not json"}, "presencesync:syncUser: is not an object"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "licenseSkuId": "18181a46-0d4e-45cd-891e-60aabd171b4e"}},
     "presencesync:syncUser.licenseSkuId: applies only with syncUser.create: true"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "create": True, "licenseSkuId": "18181a46-0d4e-45cd-891e-60aabd171b4e"}},
     "presencesync:syncUser.usageLocation: is required to license a user"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "usageLocation": "Denmark"}}, "presencesync:syncUser.usageLocation: 'Denmark' is not a two-letter country code"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "licenceSkuId": "x"}}, "presencesync:syncUser.licenceSkuId: unknown key (did you mean 'licenseSkuId'?)"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "create": True, "licensedElsewhere": True},
      "syncUserPassword": "short"}, "presencesync:syncUserPassword: must be 8 to 256 characters"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "create": True}},
     "presencesync:syncUser.licenseSkuId: is required for a created sync user"),
    ({"syncUser": {"userPrincipalName": "sync@contoso.com", "licensedElsewhere": True}},
     "presencesync:syncUser.licensedElsewhere: applies only to a created user"),
    ({"syncUser.userPrincipalName": "sync@contoso.com"}, "presencesync:syncUser.userPrincipalName: is a dotted key"),
    ({"presencesyn:profile": "graph"},
     "presencesyn:profile: unknown namespace 'presencesyn' (did you mean 'presencesync:profile'?)"),
    ({"redirectUris": ["https://novus.contoso.com/cb;x"]}, "presencesync:redirectUris[0]: 'https://novus.contoso.com/cb;x' holds ;"),
    ({"redirectUris": ["https://*.contoso.com/cb"]}, "holds *, which Entra ID refuses"),
    ({"secretRotationDays": "0", "secretExpiry": "soon"}, "presencesync:secretExpiry: 'soon' is not 1y, 2y"),
    ({"displayName": "  "}, "presencesync:displayName: is empty"),
    ({"publicClient": "yes"}, "presencesync:publicClient: 'yes' is not true or false"),
    ({"implicitGrant": {"accessToken": True}}, "presencesync:implicitGrant.accessToken: unknown key (did you mean 'accessTokens'?)"),
    ({"tenantDomain": "contoso"}, "presencesync:tenantDomain: 'contoso' is not a domain name"),
    ({"postDeployTimeout": "soon"}, "presencesync:postDeployTimeout: 'soon' is not a whole number of seconds"),
    ({"redirectUri": "[]"}, "presencesync:redirectUri: unknown key (did you mean 'redirectUris'?)"),
    ({"secretexpiry": "2y"}, "presencesync:secretexpiry: unknown key (did you mean 'secretExpiry'?)"),
    ({"azuread:environment": "mars"}, "azuread:environment: 'mars' is not a cloud the azuread provider knows"),
])
def test_each_bad_input_is_one_line_naming_the_key(overrides, expected):
    found = problems(**overrides)
    assert any(expected in p for p in found), found
    assert all("\n" not in p for p in found)


def test_all_problems_are_reported_at_once():
    found = problems(consent="x", profile="y", owners=["z"], syncUserPassword=None)
    assert len(found) == 4


def test_defaults_and_the_example_password_masking():
    settings = load_settings(stack_config(), now=NOW)
    assert (settings.profile, settings.display_name, settings.consent, settings.secret_expiry) == \
        ("ucwa", "PresenceSync", "resource", "2y")
    assert settings.client_secrets.current.end_date == "2028-11-26T00:00:00Z"
    assert settings.sync_user_password == Secret(PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)


def test_profile_defaults_for_implicit_grant_and_public_client():
    ucwa = load_settings(stack_config(), now=NOW)
    assert (ucwa.implicit_access_tokens, ucwa.implicit_id_tokens, ucwa.public_client) == (True, True, True)
    graph = load_settings(stack_config(profile="graph"), now=NOW)
    assert (graph.implicit_access_tokens, graph.implicit_id_tokens, graph.public_client) == (False, False, False)
    assert load_settings(stack_config(profile="graph", publicClient="true"), now=NOW).public_client
    assert not load_settings(stack_config(publicClient="false"), now=NOW).public_client


def test_rotation_replaces_the_single_secret():
    settings = load_settings(stack_config(secretRotationDays="180"), now=NOW)
    assert (settings.secret_rotation_days, settings.secret_expiry) == (180, None)
    assert [s.name for s in settings.client_secrets.secrets] == ["client-secret-a", "client-secret-b"]
    assert load_settings(stack_config(), now=NOW).client_secrets.current.name == "client-secret"


def test_leap_day_relative_expiry():
    settings = load_settings(stack_config(secretExpiry="1y"), now=datetime(2028, 2, 29, tzinfo=UTC))
    assert settings.client_secrets.current.end_date == "2029-03-01T00:00:00Z"


def test_encrypted_values_count_as_present():
    values = stack_config(syncUserPassword="(encrypted)", syncUser={
        "userPrincipalName": "s@contoso.com", "create": True, "licensedElsewhere": True})
    settings = load_settings(values, now=NOW, encrypted=frozenset({"presencesync:syncUserPassword"}))
    assert settings.sync_user.create


def test_pulumi_yaml_is_valid_and_declares_every_optional_key_with_a_default():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    schema = json.loads((ROOT / "tests/data/pulumi-project.schema.json").read_text())  # Pulumi's own
    jsonschema.validate(project, schema)
    declared = project["config"]
    assert set(declared) == set(KNOWN_KEYS) - set(UNDECLARED)
    # The CLI requires every declared key without a default (pkg/workspace/config.go, mergeConfig):
    # only the truly required keys may lack one.
    assert {k for k, spec in declared.items() if "default" not in spec} == set(REQUIRED)
    for key, default in DEFAULTS.items():
        assert declared[key]["default"] == default, key
    for key in KNOWN_KEYS:
        if key in declared:
            assert declared[key]["description"]
            # The CLI fills in a declared default, then refuses a `secret: true` key whose value is not encrypted
            # (pkg/workspace/config.go, mergeConfig then validateStackConfigValue): a secret key with a default
            # fails every stack that leaves it out. So the passwords are declared plain; the program checks them.
            assert not (declared[key].get("secret") and "default" in declared[key]), key
            assert "--secret" in declared[key]["description"] or key not in SECRET_KEYS
    assert "publicClient" in (ROOT / "Pulumi.yaml").read_text()  # said why it is not declared


def test_empty_defaults_read_as_not_set_and_profile_defaults_still_apply():
    as_cli_passes = {f"presencesync:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in DEFAULTS.items()}
    for profile in ("ucwa", "graph"):
        settings = load_settings({**as_cli_passes, **stack_config(profile=profile)}, now=NOW)
        assert settings.logout_url is None and settings.tenant_domain is None
        assert settings.secret_rotation_days is None and settings.secret_expiry == "2y"
        assert settings.public_client == (profile == "ucwa")
        assert settings.implicit_access_tokens == settings.implicit_id_tokens == (profile == "ucwa")
    rotating = load_settings({**as_cli_passes, **stack_config(), "presencesync:secretRotationDays": "180"}, now=NOW)
    assert rotating.secret_rotation_days == 180


@pytest.mark.parametrize(("as_cli_passes", "end"), [
    ("2027-01-01 00:00:00 +0000 UTC", "2027-01-01T00:00:00Z"),  # unquoted 2027-01-01 or 2027-01-01T00:00:00Z
    ("2027-06-30 12:30:00.5 +0200 +0200", "2027-06-30T10:30:00Z"),
])
def test_the_clis_rendering_of_an_unquoted_date_is_understood(as_cli_passes, end):
    settings = load_settings(stack_config(secretExpiry=as_cli_passes), now=NOW)
    assert settings.client_secrets.current.end_date == end


def test_a_huge_value_is_never_echoed_whole():
    found = problems(tenantDomain="x" * 100_000)
    assert len(found) == 1 and len(found[0]) < 300 and "(100000 characters)" in found[0]


@needs_example_stack
def test_example_stack_is_valid():
    from presencesync.stack_file import read_stack_config

    stack = read_stack_config(ROOT / "Pulumi.dev.yaml")
    settings = load_settings(stack.values, now=NOW, encrypted=stack.encrypted)
    assert stack.encrypted == frozenset({"presencesync:syncUserPassword"})
    assert set(k.split(":")[1] for k in stack.values if k.startswith("presencesync:")) == \
        set(KNOWN_KEYS) - {"profile", "postDeploy", "postDeployTimeout", "secretRotationDays",
                           "secretRotationOffsetDays",  # the last two are shown commented, as are several sync users
                           "syncUsers", "syncUserPasswords", "watchedUsers"}
    assert "# presencesync:secretRotationDays: 180" in (ROOT / "Pulumi.dev.yaml").read_text()  # shown commented
    assert "# presencesync:secretRotationOffsetDays: " in (ROOT / "Pulumi.dev.yaml").read_text()
    assert "# presencesync:syncUsers:" in (ROOT / "Pulumi.dev.yaml").read_text()
    assert settings.sync_user.license_sku_id
