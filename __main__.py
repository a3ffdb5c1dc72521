"""One customer tenant's PresenceSync registration: read the stack's config, build it, export."""

from datetime import UTC, datetime

import pulumi

from presencesync.config import from_pulumi
from presencesync.tenant import Tenant

settings = from_pulumi(now=datetime.now(UTC))
tenant = Tenant(pulumi.get_stack(), settings)

pulumi.export("novus", tenant.novus)
pulumi.export("directoryTenantId", tenant.directory_tenant_id)
pulumi.export("applicationObjectId", tenant.application_object_id)
pulumi.export("servicePrincipalObjectId", tenant.service_principal_object_id)
pulumi.export("clientSecretEndDate", tenant.client_secret_end_date)
pulumi.export("adminConsentUrl", tenant.admin_consent_url)
