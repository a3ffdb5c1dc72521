"""Secret rotation: walk simulated dates across several periods, in the schedule and in the plan."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pulumi
import pytest
from conftest import stack_config

from presencesync.client_secrets import EPOCH, ClientSecret, rotating_secrets
from presencesync.config import from_pulumi
from presencesync.offline_plan import Plan, run_program
from presencesync.rfc3339 import parse_rfc3339
from presencesync.tenant import Tenant

PASSWORD_TYPE = "azuread:index/applicationPassword:ApplicationPassword"
START = date(2026, 11, 26)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@pytest.mark.parametrize("period", [31, 90, 180, 365])
def test_every_day_one_secret_has_at_least_half_a_period_left(period):
    for offset in range(4 * period):
        today = START + timedelta(days=offset)
        plan = rotating_secrets(today, period)
        left = {s.name: parse_rfc3339(s.end_date) - _midnight(today) for s in plan.secrets}
        assert len(plan.secrets) == 2 and all(s.start_date for s in plan.secrets)
        assert max(left.values()) >= timedelta(days=period / 2)
        assert left[plan.current.name] == max(left.values()) > timedelta(days=period)  # Novus gets the newer
        assert min(left.values()) > timedelta(0)  # neither is expired
        assert all(parse_rfc3339(s.end_date) - parse_rfc3339(str(s.start_date)) == timedelta(days=2 * period)
                   for s in plan.secrets)


@pytest.mark.parametrize("period", [31, 180])
def test_the_schedule_changes_only_at_period_boundaries_and_one_slot_at_a_time(period):
    boundaries = 0
    yesterday = rotating_secrets(START, period)
    for offset in range(1, 4 * period + 1):
        today = START + timedelta(days=offset)
        plan = rotating_secrets(today, period)
        at_boundary = (today - EPOCH).days % period == 0
        changed = [s for s, before in zip(plan.secrets, yesterday.secrets, strict=True)
                   if _as_resource(s) != _as_resource(before)]
        if not at_boundary:
            assert plan == yesterday, today
        else:
            boundaries += 1
            # Only the slot whose secret expires today is replaced; yesterday's current one stays.
            assert [s.name for s in changed] == [plan.current.name]
            replaced = next(s for s in yesterday.secrets if s.name == plan.current.name)
            assert parse_rfc3339(replaced.end_date) == _midnight(today)
            assert plan.previous is not None and _as_resource(plan.previous) == _as_resource(yesterday.current)
            assert plan.next_rotation == (today + timedelta(days=period)).isoformat() + "T00:00:00Z"
        yesterday = plan
    assert boundaries == 4


def _as_resource(secret: ClientSecret) -> tuple:
    """What the ApplicationPassword resource is made of (which one is current is not part of it)."""
    return secret.name, secret.start_date, secret.end_date, secret.keepers


def _plan_on(day: date, facts, **overrides) -> Plan:
    """The whole program under the mock engine, as `pulumi preview` would run it on `day`."""
    def program() -> None:
        from presencesync.handover import post_deploy_step

        tenant = Tenant(pulumi.get_stack(), from_pulumi(now=_midnight(day) + timedelta(hours=13)), post_deploy_step)
        for name, value in tenant.outputs.items():
            pulumi.export(name, value)
    return run_program(stack_config(**overrides), facts, secret_keys=("presencesync:syncUserPassword",),
                       program=program)


def _secrets(plan: Plan) -> dict[str, dict]:
    return {r.name: r.inputs for r in plan.of_type(PASSWORD_TYPE)}


def test_the_plan_changes_only_at_period_boundaries(facts):
    period = 60
    first_boundary = EPOCH + timedelta(days=((START - EPOCH).days // period + 1) * period)
    days = sorted({START, *(first_boundary + timedelta(days=k * period + d) for k in range(3) for d in (-1, 0, 1)),
                   first_boundary + timedelta(days=period // 2)})
    plans = {day: _plan_on(day, facts, secretRotationDays=str(period)) for day in days}
    for before, after in itertools.pairwise(days):
        crossed = (after - EPOCH).days // period != (before - EPOCH).days // period
        old, new = _secrets(plans[before]), _secrets(plans[after])
        assert set(old) == set(new) == {"client-secret-a", "client-secret-b"}
        changed = [name for name in old if old[name] != new[name]]
        assert len(changed) == (1 if crossed else 0), (before, after)
        if crossed:  # the replaced slot is the new current one, and the old current secret is untouched
            current_end = plans[after].outputs["clientSecretEndDate"]
            assert new[changed[0]]["endDate"] == current_end
            assert plans[after].outputs["previousClientSecretEndDate"] == plans[before].outputs["clientSecretEndDate"]


def test_rotated_secrets_are_left_to_expire_and_both_report_their_changes(facts):
    result = _plan_on(START, facts, secretRotationDays="180")
    secrets = {r.name: r for r in result.of_type(PASSWORD_TYPE)}
    current = next(r for r in secrets.values() if r.inputs["endDate"] == result.outputs["clientSecretEndDate"])
    other = next(r for r in secrets.values() if r is not current)
    assert all(r.retain_on_delete and r.ignore_changes == [] for r in secrets.values())
    assert current.after_create_hooks == other.after_create_hooks == ["tenant-changed"]
    assert {urn.rsplit("::", 1)[-1] for urn in current.depends_on} == {"application"}  # beside the other
    assert parse_rfc3339(result.outputs["nextSecretRotation"]) - _midnight(START) <= timedelta(days=180)
    assert parse_rfc3339(result.outputs["previousClientSecretEndDate"]) < parse_rfc3339(
        result.outputs["clientSecretEndDate"])
    assert not _plan_on(START, facts).one(PASSWORD_TYPE).retain_on_delete
