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
        return cls({k: Secret(novus[k]) if k in SECRET_FIELDS else novus[k] for k, _ in NOVUS_FIELDS},
                   *(str(outputs[k]) for k in keys), *(str(v) if isinstance(v, str) else None for v in rotation))

    def text(self, key: str) -> str:
        value = self.novus[key]
        return value.reveal() if isinstance(value, Secret) else value
