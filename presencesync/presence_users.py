"""The people Novus could follow in a tenant, for the preflight: one Graph read for its `$batch`, and the
warning when presencesync:watchedUsers is not said or is smaller (issue 19)."""

from __future__ import annotations

from presencesync.graph import Call
from presencesync.sync_users import needed

# The preflight's count of the people Novus could follow: enabled users with an enabled Microsoft Teams plan
# (assignedPlans service TeamspaceAPI, as the preflight reads the sync user's). Filtering on assignedPlans and
# $count are advanced queries: Graph answers them only with ConsistencyLevel: eventual ("Advanced query
# capabilities on Microsoft Entra ID objects"), and $count=true puts the total in @odata.count; $top=1 keeps the
# answer small. One read, for the preflight's $batch.
PRESENCE_USERS = Call(
    "GET", "/users?$filter=accountEnabled eq true and assignedPlans/any(a:a/service eq 'TeamspaceAPI' and "
    "a/capabilityStatus eq 'Enabled')&$count=true&$top=1&$select=id",
    what="count of users with Teams", headers={"ConsistencyLevel": "eventual"})


def presence_users_warning(counted: int, profile: str, watched_users: int | None, have: int) -> str | None:
    """The preflight's warning when watchedUsers is not said or is smaller than the tenant's users with Teams."""
    wanted = needed(profile, counted)
    if watched_users is None:
        return (f"presencesync:watchedUsers: not set, and the tenant has {counted} enabled users with Teams, who need "
                f"{wanted} sync users with profile {profile} (the stack has {have}); set watchedUsers to how many "
                "people Novus follows")
    if watched_users < counted:
        return (f"presencesync:watchedUsers: {watched_users}, and the tenant has {counted} enabled users with Teams, "
                f"who need {wanted} sync users with profile {profile} (the stack has {have}); raise watchedUsers if "
                "Novus follows them all")
    return None
