"""Sign-in and Microsoft Graph endpoints of each Azure cloud, and the overrides tests use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    authority_host: str  # e.g. https://login.microsoftonline.com
    graph: str  # e.g. https://graph.microsoft.com

    @property
    def graph_scope(self) -> str:
        # National clouds only accept a token scoped to their own Graph host.
        return f"{self.graph}/.default"

    def authority(self, tenant: str) -> str:
        return f"{self.authority_host}/{tenant}"

    def admin_consent_url(self, tenant: str, client_id: str) -> str:
        return f"{self.authority_host}/{tenant}/adminconsent?client_id={client_id}"


_PUBLIC = Endpoints("https://login.microsoftonline.com", "https://graph.microsoft.com")
_US_GOV = Endpoints("https://login.microsoftonline.us", "https://graph.microsoft.us")
_US_DOD = Endpoints("https://login.microsoftonline.us", "https://dod-graph.microsoft.us")
_CHINA = Endpoints("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn")

# Keys are the values the azuread provider accepts for `azuread:environment`.
CLOUDS: dict[str, Endpoints] = {
    "public": _PUBLIC,
    "global": _PUBLIC,
    "usgovernment": _US_GOV,
    "usgovernmentl4": _US_GOV,
    "usgovernmentl5": _US_DOD,
    "dod": _US_DOD,
    "china": _CHINA,
}

AUTHORITY_OVERRIDE = "PRESENCESYNC_AUTHORITY_HOST"
GRAPH_OVERRIDE = "PRESENCESYNC_GRAPH_ENDPOINT"


def endpoints_for(environment: str, env: Mapping[str, str] = os.environ) -> Endpoints:
    """The endpoints of `environment` (validated by config), with the environment overrides applied."""
    cloud = CLOUDS[environment]
    return Endpoints(
        authority_host=env.get(AUTHORITY_OVERRIDE, cloud.authority_host).rstrip("/"),
        graph=env.get(GRAPH_OVERRIDE, cloud.graph).rstrip("/"),
    )
