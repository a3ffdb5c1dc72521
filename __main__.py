"""One customer tenant's PresenceSync registration: read the stack's config, build it, export."""

from datetime import UTC, datetime

import pulumi

from presencesync.config import from_pulumi
from presencesync.tenant import PostDeployStep, Tenant

settings = from_pulumi(now=datetime.now(UTC))
post_deploy: PostDeployStep | None = None
if settings.post_deploy:
    from presencesync.handover import post_deploy_step as post_deploy  # msal and requests: only when it runs
tenant = Tenant(pulumi.get_stack(), settings, post_deploy)

for name, value in tenant.outputs.items():
    pulumi.export(name, value)
