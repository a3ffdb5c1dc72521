"""Will the tenant let the stack add its client secret(s)? Its app management policies decide.

Graph's model (tenantAppManagementPolicy, appManagementPolicy, passwordCredentialConfiguration): the
tenant's default policy applies to every application unless a custom appManagementPolicy is assigned to
it, which then applies instead. A policy counts only while `isEnabled`; each restriction only while its
`state` is enabled (restrictions written before `state` existed have none: enabled) and for applications
created on or after its `restrictForAppsCreatedAfterDateTime` (none: every application). A
`passwordAddition` restriction refuses every client secret (`addPassword` answers 400
CredentialTypeNotAllowedAsPerAppPolicy); a `passwordLifetime` one refuses a secret living longer than its
`maxLifetime` (400 CredentialInvalidLifetimeAsPerAppPolicy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from presencesync.config import Settings
from presencesync.preflight_findings import Finding, Reads
from presencesync.rfc3339 import parse_rfc3339
from presencesync.secret_lifetime import longest_end_date, longest_rotation_days, parse_duration, secret_span

EXEMPT = ("an admin can exempt this application with a custom app management policy (isEnabled, without that "
          "restriction) assigned to it: POST /policies/appManagementPolicies, then POST /applications/{object ID}/"
          "appManagementPolicies/$ref")
MIN_ROTATION_DAYS = 31


def password_restrictions(settings: Settings, reads: Reads, assigned: list[dict[str, Any]],
                          created: datetime | None, now: datetime) -> list[Finding]:
    """`assigned`: the custom policy assigned to the stack's existing application (if any); `created`: when
    that application was created (None: it will be created now)."""
    policy = assigned[0] if assigned else reads.body("default policy")
    if policy is None or policy.get("isEnabled") is not True:
        return []
    name = f"'{policy.get('displayName') or 'default'}' ({policy.get('id')})"
    restrictions = (policy.get("applicationRestrictions") or policy.get("restrictions") or {}).get(
        "passwordCredentials") or []
    exempt = EXEMPT if created else (EXEMPT + "; the application does not exist yet: create it first (pulumi up "
                                     "stops at the client secret), assign the policy, then run pulumi up again")
    found = []
    for restriction in restrictions:
        if restriction.get("state") not in (None, "enabled") or not _applies(restriction, created or now):
            continue
        kind = restriction.get("restrictionType")
        if kind == "passwordAddition":
            found.append(Finding(True, "app management policy", f"{name} refuses client secrets for applications "
                                 f"created after {restriction.get('restrictForAppsCreatedAfterDateTime') or 'any date'}"
                                 f", and Novus signs in with the app's client ID and secret (addPassword would answer "
                                 f"CredentialTypeNotAllowedAsPerAppPolicy); {exempt}"))
        elif kind == "passwordLifetime":
            found += _lifetime(settings, name, str(restriction.get("maxLifetime") or ""), exempt, now)
    return found


def _applies(restriction: dict[str, Any], created: datetime) -> bool:
    after = restriction.get("restrictForAppsCreatedAfterDateTime")
    return after is None or created >= parse_rfc3339(str(after))


def _lifetime(settings: Settings, name: str, max_lifetime: str, exempt: str, now: datetime) -> list[Finding]:
    limit = parse_duration(max_lifetime)
    if limit is None:
        return [Finding(False, "app management policy", f"{name} limits client secrets to '{max_lifetime}', which is "
                        "not an ISO 8601 duration; check the secret's lifetime against it by hand")]
    too_long = [secret for secret in settings.client_secrets.secrets
                if not secret_span(secret.start_date, secret.end_date, now).fits(limit)]
    if not too_long:
        return []
    days = longest_rotation_days(limit, now.date())
    asked = (f"secretRotationDays {settings.secret_rotation_days} (each secret lives "
             f"{2 * (settings.secret_rotation_days or 0)} days)" if settings.secret_rotation_days else
             f"secretExpiry {settings.secret_expiry} (until {too_long[0].end_date})")
    fits = f"secretExpiry a date on or before {longest_end_date(limit, now)}"
    fits += f", or secretRotationDays of at most {days}" if days >= MIN_ROTATION_DAYS else \
        " (rotation needs periods of at least 31 days, which this limit does not allow)"
    return [Finding(True, "app management policy", f"{name} limits client secrets to {max_lifetime}, shorter than "
                    f"the stack asks with {asked}: addPassword would answer CredentialInvalidLifetimeAsPerAppPolicy "
                    f"and pulumi up would stop with the application half made; set {fits}; or {exempt}")]
