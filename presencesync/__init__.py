"""PresenceSync: the Entra ID registration that connects Zylinc Novus to Microsoft Teams presence, as Pulumi code."""
