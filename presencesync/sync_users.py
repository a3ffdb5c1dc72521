"""The collection of sync users Novus's page takes (guide step 8, "Collection of users with UCWA access
permissions"): how many a tenant needs, and the rules that tie `syncUsers` to `syncUserPasswords`.

One sync user follows a bounded number of people, so a large tenant needs several:
- profile graph: a presence change-notification subscription is delegated only and holds at most 650
  user IDs, one subscription per user and application (Microsoft Graph, "Get change notifications for
  presence updates in Microsoft Teams");
- profile ucwa: the sync user follows people as contacts; the documented default of the contact limit
  is 250 (Skype for Business, Set-CsUserServicesConfiguration -MaxContacts: "the maximum number of
  contacts a user can have; the default value is 250").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

# How many people one sync user can follow, per profile (see above).
PEOPLE_PER_SYNC_USER = {"graph": 650, "ucwa": 250}
ONE_USER_NAME = "sync-user"  # the one-user form's resource names, kept for the first user of a collection
LICENCE_NAME = "sync-user-licence"


def needed(profile: str, watched_users: int) -> int:
    """How many sync users it takes for Novus to follow `watched_users` people with `profile`."""
    return max(1, math.ceil(watched_users / PEOPLE_PER_SYNC_USER[profile]))


def sizing_line(profile: str, watched_users: int | None, have: int) -> str:
    """What `check` says of the collection's size."""
    each = PEOPLE_PER_SYNC_USER[profile]
    if watched_users is None:
        return (f"sync users: {have}, following up to {have * each} people with profile {profile} ({each} each); "
                "set presencesync:watchedUsers to have check size them")
    return (f"sync users: {have}; {watched_users} watched users need {needed(profile, watched_users)} with profile "
            f"{profile} ({each} each)")


def sizing_problem(profile: str, watched_users: int | None, have: int) -> str | None:
    """The one line saying the collection is too small for watchedUsers, or None."""
    if watched_users is None or profile not in PEOPLE_PER_SYNC_USER:
        return None
    wanted = needed(profile, watched_users)
    if have >= wanted:
        return None
    return (f"presencesync:syncUsers: {watched_users} watched users need {wanted} sync users with profile {profile} "
            f"({PEOPLE_PER_SYNC_USER[profile]} each), and the stack has {have}; add {wanted - have} to "
            "presencesync:syncUsers (with their passwords in presencesync:syncUserPasswords)")


def collection_problems(upns: list[str], passwords: Iterable[str]) -> list[str]:
    """A user principal name listed twice, a password missing for a listed user or given for one not listed."""
    problems = []
    seen: dict[str, int] = {}
    for index, upn in enumerate(upns):
        if upn.lower() in seen:
            problems.append(f"presencesync:syncUsers[{index}].userPrincipalName: '{upn}' is listed already as "
                            f"syncUsers[{seen[upn.lower()]}] (names are case-insensitive); remove one")
        seen.setdefault(upn.lower(), index)
    given = {p.lower(): p for p in passwords}
    for upn in upns:
        if upn.lower() not in given:
            problems.append(f"presencesync:syncUserPasswords: has no password for {upn}; set it with pulumi config "
                            f"set --secret --path 'presencesync:syncUserPasswords[\"{upn}\"]'")
    for lowered, upn in given.items():
        if lowered not in seen:
            problems.append(f"presencesync:syncUserPasswords: holds a password for {upn}, who is not in "
                            "presencesync:syncUsers; add the user to syncUsers or remove the password")
    return problems


def password_for(upn: str, passwords: Mapping[str, str]) -> str:
    return next(value for key, value in passwords.items() if key.lower() == upn.lower())


def resource_name(index: int, upn: str) -> str:
    """The first sync user keeps the one-user form's names, so an existing stack keeps its user; the others are
    named by their user principal name, so reordering them renames nothing."""
    return ONE_USER_NAME if index == 0 else f"{ONE_USER_NAME}-{re.sub(r'[^a-z0-9]+', '-', upn.lower()).strip('-')}"
