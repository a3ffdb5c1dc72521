"""Reading the sync users' keys: one sync user (syncUser, syncUserPassword) or the collection (syncUsers,
syncUserPasswords), each user's object, its password, and how many people Novus follows (watchedUsers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from presencesync.config_keys import NAMESPACE
from presencesync.config_values import DOMAIN, Reader, suggest
from presencesync.sync_users import collection_problems, password_for
from presencesync.untrusted import excerpt, is_guid

SYNC_USER_KEYS = ("userPrincipalName", "create", "usageLocation", "licenseSkuId", "licensedElsewhere")
_UPN_LOCAL = re.compile(r"[A-Za-z0-9'_!#^~+-]+(\.[A-Za-z0-9'_!#^~+-]+)*")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class SyncUser:
    user_principal_name: str
    create: bool
    usage_location: str | None
    license_sku_id: str | None


def read_sync_users(r: Reader, encrypted: frozenset[str]) -> list[tuple[SyncUser, str]]:
    """Novus's sync users with their passwords, from the one-user form (syncUser, syncUserPassword) or the
    collection (syncUsers, syncUserPasswords); empty with the problems noted. An encrypted password (only
    offline) counts as present and reads as "(encrypted)"."""
    one, password = r.optional("syncUser"), r.optional("syncUserPassword")
    many, passwords = r.values.get(f"{NAMESPACE}:syncUsers"), r.optional("syncUserPasswords")
    if one is not None and many is not None:
        r.problem("syncUsers", "cannot be combined with presencesync:syncUser; keep one form (for several sync users "
                  "list them all in syncUsers, their passwords in syncUserPasswords)")
        return []
    if many is None:
        if passwords is not None:
            r.problem("syncUserPasswords", "belongs with presencesync:syncUsers; with syncUser give the password in "
                      "presencesync:syncUserPassword")
        if one is None:
            r.problem("syncUser", "is missing; set it with pulumi config set --path presencesync:syncUser."
                      "userPrincipalName sync@contoso.com (or list several sync users in presencesync:syncUsers)")
        if password is None:
            r.problem("syncUserPassword", "is missing; set it with "
                      "pulumi config set --secret presencesync:syncUserPassword")
        value = r.parse_json("syncUser", one, dict, "an object") if one is not None else None
        user = _sync_user(r, value) if value is not None else None
        if user is None or password is None:
            return []
        return [(user, password)] if _password_ok(r, "syncUserPassword", user, password,
                                                  "syncUserPassword" in encrypted) else []
    if password is not None:
        r.problem("syncUserPassword", "belongs with presencesync:syncUser; with syncUsers give each password in "
                  "presencesync:syncUserPasswords")
    items = r.parse_json("syncUsers", many, list, "an array")
    secrets = r.parse_json("syncUserPasswords", passwords or "{}", dict, "an object")
    if items is None or secrets is None:
        return []
    if not items:
        r.problem("syncUsers", "is an empty list; list at least one sync user, or use presencesync:syncUser")
        return []
    users = [_sync_user(r, item, f"syncUsers[{i}]") for i, item in enumerate(items)]
    found = [u for u in users if u is not None]
    if len(found) < len(users):
        return []
    before = len(r.problems)
    r.problems += collection_problems([u.user_principal_name for u in found], secrets)
    skus = sorted({u.license_sku_id for u in found if u.license_sku_id})
    if len(skus) > 1:
        r.problem("syncUsers", f"names {len(skus)} licence SKUs ({', '.join(skus)}), and the created sync users share "
                  "one licence group; give them one licenseSkuId")
    if len(r.problems) > before:
        return []
    collection = []
    for user in found:
        upn = user.user_principal_name
        value = password_for(upn, secrets)
        key = f"syncUserPasswords[\"{upn}\"]"
        sealed = isinstance(value, dict) and set(value) == {"secure"}
        if f"{NAMESPACE}:syncUserPasswords" in encrypted and not sealed:
            r.problem(key, "is in plain text in the stack file; remove it and set it with pulumi config set "
                      f"--secret --path 'presencesync:{key}' PASSWORD")
        elif not sealed and not isinstance(value, str):
            r.problem(key, "is not a string; set it with pulumi config set --secret --path")
        elif _password_ok(r, key, user, "(encrypted)" if sealed else value, sealed):
            collection.append((user, "(encrypted)" if sealed else value))
    return collection if len(collection) == len(found) else []


def _sync_user(r: Reader, value: Any, key: str = "syncUser") -> SyncUser | None:
    """One sync user's object (`syncUser`, or an item of `syncUsers`), or None with its problems noted."""
    fix = f"set it with pulumi config set --path presencesync:{key}.userPrincipalName sync@contoso.com"
    if not isinstance(value, dict):
        r.problem(key, "is not an object; set it as a YAML map in the stack file or with pulumi config set --path")
        return None
    ok = True
    for extra in set(value) - set(SYNC_USER_KEYS):
        r.problem(f"{key}.{excerpt(str(extra))}", f"unknown key{suggest(str(extra), SYNC_USER_KEYS)}; remove it")
        ok = False
    upn = value.get("userPrincipalName")
    if not isinstance(upn, str) or not upn:
        r.problem(f"{key}.userPrincipalName", f"is missing; {fix}")
        ok = False
    elif (why := _upn_problem(upn)) is not None:
        r.problem(f"{key}.userPrincipalName", f"'{excerpt(upn)}' {why}")
        ok = False
    create = value.get("create", False)
    if not isinstance(create, bool):
        r.problem(f"{key}.create", f"'{excerpt(str(create))}' is not true or false")
        ok = False
    location = value.get("usageLocation")
    if location is not None and (not isinstance(location, str) or not _COUNTRY.fullmatch(location)):
        r.problem(f"{key}.usageLocation", f"'{excerpt(str(location))}' is not a two-letter country code, e.g. DK")
        ok = False
    sku = value.get("licenseSkuId")
    elsewhere = value.get("licensedElsewhere", False)
    if not isinstance(elsewhere, bool):
        r.problem(f"{key}.licensedElsewhere", f"'{excerpt(str(elsewhere))}' is not true or false")
        ok = False
    elif elsewhere and (create is not True or sku is not None):
        r.problem(f"{key}.licensedElsewhere", "applies only to a created user without syncUser.licenseSkuId; "
                  "remove one of the two")
        ok = False
    elif create is True and sku is None and not elsewhere:
        r.problem(f"{key}.licenseSkuId", "is required for a created sync user, which needs an Office 365 "
                  "licence (E1 or higher) to sign in to Teams: set it and syncUser.usageLocation, or set "
                  "syncUser.licensedElsewhere: true if the licence is given another way")
        ok = False
    if sku is not None:
        if not isinstance(sku, str) or not is_guid(sku):
            r.problem(f"{key}.licenseSkuId", f"'{excerpt(str(sku))}' is not a SKU ID (GUID); "
                      "find it with: az rest --url https://graph.microsoft.com/v1.0/subscribedSkus")
            ok = False
        elif create is not True:
            r.problem(f"{key}.licenseSkuId", "applies only with syncUser.create: true; "
                      "license an existing user yourself, or remove the key")
            ok = False
        elif location is None:
            r.problem(f"{key}.usageLocation", "is required to license a user; set the user's "
                      "two-letter country code, e.g. DK")
            ok = False
    if not ok:
        return None
    return SyncUser(user_principal_name=str(upn), create=bool(create), usage_location=location,
                    license_sku_id=sku)


def _password_ok(r: Reader, key: str, user: SyncUser, password: str, encrypted: bool) -> bool:
    if encrypted:
        return True  # checked when Pulumi decrypts it
    if not password:
        r.problem(key, "is empty; set the sync user's password")
        return False
    if user.create and not 8 <= len(password) <= 256:
        r.problem(key, "must be 8 to 256 characters for a new user; choose another")
        return False
    return True


def _upn_problem(upn: str) -> str | None:
    local, at, domain = upn.rpartition("@")
    if not at or not local or len(local) > 64 or not _UPN_LOCAL.fullmatch(local) or not DOMAIN.fullmatch(domain):
        return "is not a user principal name; use the sync user's sign-in name, e.g. sync@contoso.com"
    return None


def read_watched_users(r: Reader) -> int | None:
    """How many people Novus follows; the declared default 0 reads as not said."""
    value = r.optional("watchedUsers")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        r.problem("watchedUsers", f"'{excerpt(value)}' is not a positive whole number; set how many people Novus "
                  "follows, e.g. 2400, or remove the key")
        return None
    return int(value)
