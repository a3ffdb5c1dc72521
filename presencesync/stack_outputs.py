"""What `pulumi up` produced, as post-deploy reads it from the stack outputs: the Novus values and the IDs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from presencesync.config import Secret
from presencesync.errors import PresenceSyncError
from presencesync.untrusted import is_guid

NOVUS_FIELDS = (("tenantId", "Tenant ID"), ("clientId", "Client ID"), ("clientSecret", "Client secret"),
                ("userName", "User name"), ("password", "Password"))


SECRET_FIELDS = ("clientSecret", "password")


class OutputsError(PresenceSyncError):
    """The stack outputs lack something post-deploy needs; the message names it."""


@dataclass(frozen=True)
class Deployed:
    """What `pulumi up` produced, from the stack outputs."""

    novus: dict[str, str | Secret]
    directory_tenant_id: str
    application_object_id: str
    service_principal_object_id: str
    client_secret_end_date: str
    admin_consent_url: str
    previous_client_secret_end_date: str | None = None  # with rotation
    next_secret_rotation: str | None = None  # with rotation
    # Novus's collection of sync users in its page order: (user name, password); the first is novus.userName.
    sync_users: tuple[tuple[str, Secret], ...] = ()

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> Deployed:
        novus = outputs.get("novus")
        if not isinstance(novus, dict):
            raise OutputsError("the stack has no 'novus' output; run pulumi up first")
        missing = [f"novus.{k}" for k, _ in NOVUS_FIELDS if not isinstance(novus.get(k), str)]
        keys = ("directoryTenantId", "applicationObjectId", "servicePrincipalObjectId", "clientSecretEndDate",
                "adminConsentUrl")
        missing += [k for k in keys if not isinstance(outputs.get(k), str)]
        if missing:
            raise OutputsError(f"the stack outputs lack {', '.join(missing)}; run pulumi up first "
                               "(and read them with --show-secrets)")
        ids = {"novus.clientId": novus["clientId"], **{k: outputs[k] for k in keys[:3]}}
        if not_guids := [k for k, v in ids.items() if not is_guid(v)]:  # they go into Graph URLs and filters
            raise OutputsError(f"the stack outputs' {', '.join(not_guids)} are not GUIDs; read them from "
                               "pulumi stack output --json of this stack")
        rotation = [outputs.get(k) for k in ("previousClientSecretEndDate", "nextSecretRotation")]
        # A stack deployed before the collection existed has only novus.userName and novus.password.
        listed = novus.get("syncUsers") or [{"userName": novus["userName"], "password": novus["password"]}]
        if not isinstance(listed, list) or not all(
                isinstance(u, dict) and isinstance(u.get("userName"), str) and isinstance(u.get("password"), str)
                for u in listed):
            raise OutputsError("the stack output novus.syncUsers is not a list of {userName, password}; run pulumi up")
        previous, next_rotation = (str(v) if isinstance(v, str) else None for v in rotation)
        return cls({k: Secret(novus[k]) if k in SECRET_FIELDS else novus[k] for k, _ in NOVUS_FIELDS},
                   directory_tenant_id=str(outputs["directoryTenantId"]),
                   application_object_id=str(outputs["applicationObjectId"]),
                   service_principal_object_id=str(outputs["servicePrincipalObjectId"]),
                   client_secret_end_date=str(outputs["clientSecretEndDate"]),
                   admin_consent_url=str(outputs["adminConsentUrl"]), previous_client_secret_end_date=previous,
                   next_secret_rotation=next_rotation,
                   sync_users=tuple((u["userName"], Secret(u["password"])) for u in listed))

    def text(self, key: str) -> str:
        value = self.novus[key]
        return value.reveal() if isinstance(value, Secret) else value
