"""The PresenceSync policy pack: `pulumi preview --policy-pack policy` (the fleet and the pipelines pass it)."""

import functools
import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from policies import policies  # noqa: E402
from pulumi_policy import PolicyPack  # noqa: E402

from presencesync.clouds import endpoints_for  # noqa: E402
from presencesync.credentials import deployer_object_id  # noqa: E402


@functools.cache
def deployer() -> str:
    # The pack runs beside the program with the same credentials, so their Graph token names the
    # deployer. ARM_ENVIRONMENT selects a national cloud, as it does for the azuread provider.
    return deployer_object_id(endpoints_for(os.environ.get("ARM_ENVIRONMENT", "public")))


PolicyPack("presencesync", policies(deployer))
