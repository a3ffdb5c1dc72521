"""The sync users (guide step 6, for each user of Novus's collection): existing users looked up, or users the
tenant creates and licenses through one licence group."""

from __future__ import annotations

import pulumi
import pulumi_azuread as azuread

from presencesync.config import Settings
from presencesync.sync_users import LICENCE_NAME, resource_name


def sync_users(settings: Settings, deployer_id: pulumi.Output[str], child: pulumi.ResourceOptions,
               lookup: pulumi.InvokeOptions) -> tuple[list[pulumi.Output[str]], list[pulumi.CustomResource]]:
    """Each sync user's object ID, and the resources that create and license them (children of `child`'s parent).
    The first user keeps the one-user form's resource names, so a stack that moves to syncUsers keeps its user."""
    ids: list[pulumi.Output[str]] = []
    created: list[azuread.User] = []
    for index, (wanted, password) in enumerate(zip(settings.sync_users, settings.sync_user_passwords, strict=True)):
        if not wanted.create:
            ids.append(azuread.get_user_output(user_principal_name=wanted.user_principal_name, opts=lookup).object_id)
            continue
        user = azuread.User(
            resource_name(index, wanted.user_principal_name),
            user_principal_name=wanted.user_principal_name,
            display_name=f"{settings.display_name} sync user" + (f" {index + 1}" if index else ""),
            mail_nickname=wanted.user_principal_name.split("@")[0],
            password=pulumi.Output.secret(password.reveal()),
            force_password_change=False,
            disable_password_expiration=True,
            usage_location=wanted.usage_location,
            opts=child,
        )
        ids.append(user.object_id)
        created.append(user)
    licensed = [u for u, w in zip(created, [w for w in settings.sync_users if w.create], strict=True)
                if w.license_sku_id]
    sku = next((w.license_sku_id for w in settings.sync_users if w.create and w.license_sku_id), None)
    if not licensed or sku is None:
        return ids, list(created)
    group = azuread.Group(
        LICENCE_NAME,
        display_name=f"{settings.display_name} sync user licence",
        description="Gives the PresenceSync sync user its Office 365 licence.",  # as before: no change on upgrade
        security_enabled=True,
        prevent_duplicate_names=True,
        owners=[deployer_id],
        members=[u.object_id for u in licensed],
        opts=child,
    )
    licence = azuread.GroupLicense(LICENCE_NAME, group_object_id=group.object_id, sku_id=sku, opts=child)
    return ids, [*created, group, licence]
