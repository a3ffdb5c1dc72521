"""One customer tenant's PresenceSync registration: read the stack's config, build it, export."""

from datetime import UTC, datetime

import pulumi

from presencesync.config import from_pulumi
from presencesync.tenant import Tenant

settings = from_pulumi(now=datetime.now(UTC))
tenant = Tenant(pulumi.get_stack(), settings)

for name, value in tenant.outputs.items():
    pulumi.export(name, value)
