"""The sync user (guide step 6): an existing user looked up, or one the tenant creates and licenses."""

from __future__ import annotations

import pulumi
import pulumi_azuread as azuread

from presencesync.config import Settings


def sync_user(settings: Settings, deployer_id: pulumi.Output[str], child: pulumi.ResourceOptions,
              lookup: pulumi.InvokeOptions) -> tuple[pulumi.Output[str], list[pulumi.CustomResource]]:
    """The sync user's object ID, and the resources that create and license it (children of `child`'s parent)."""
    wanted = settings.sync_user
    if not wanted.create:
        return azuread.get_user_output(user_principal_name=wanted.user_principal_name, opts=lookup).object_id, []
    user = azuread.User(
        "sync-user",
        user_principal_name=wanted.user_principal_name,
        display_name=f"{settings.display_name} sync user",
        mail_nickname=wanted.user_principal_name.split("@")[0],
        password=pulumi.Output.secret(settings.sync_user_password.reveal()),
        force_password_change=False,
        disable_password_expiration=True,
        usage_location=wanted.usage_location,
        opts=child,
    )
    if not wanted.license_sku_id:
        return user.object_id, [user]
    group = azuread.Group(
        "sync-user-licence",
        display_name=f"{settings.display_name} sync user licence",
        description="Gives the PresenceSync sync user its Office 365 licence.",
        security_enabled=True,
        prevent_duplicate_names=True,
        owners=[deployer_id],
        members=[user.object_id],
        opts=child,
    )
    licence = azuread.GroupLicense("sync-user-licence", group_object_id=group.object_id, sku_id=wanted.license_sku_id,
                                   opts=child)
    return user.object_id, [user, group, licence]
