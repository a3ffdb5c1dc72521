"""When `pulumi up` runs post-deploy, and what it refuses before it touches the tenant.

Post-deploy must run once in every `pulumi up` that creates, updates or replaces any resource of the
tenant, after the last of them. The engine (pulumi/pulumi pkg/resource/deploy) offers hooks per step:
`CreateStep.Apply` runs after_create hooks (also for the create half of a replace, which is a CreateStep),
`UpdateStep.Apply` runs before_update hooks before the provider's Update and after_update hooks after it,
`SameStep.Apply` runs none; each after hook runs *before* the engine answers the program's registration of
its resource, and `RunHooks` waits for it without a timeout. A component's after hooks run at its
RegisterResourceOutputs (step_executor.go), but only on a CreateStep or UpdateStep, and a component updates
only when its own inputs change (step_generator.go `diff` with no provider): a tenant whose application
alone changes has a `same` component, so a hook there would not run. A hook on one resource may not wait
for the others: those that depend on it wait for its answer, which waits for the hook.

So each custom resource of the tenant carries one after_create/after_update hook that only records its
name (and returns at once, so no chain of creates gets longer), and post-deploy runs in the program once
every registration is answered: by then each hook that will run in this deployment has run, because the
engine answers a registration only after its hooks. Nothing recorded (every step `same`, or a preview,
where these hooks do not run): post-deploy is skipped. Its failure fails `pulumi up`, naming the step.
Deletes come after the program ends; a run that only deletes is not proven.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pulumi

from presencesync.errors import PresenceSyncError
from presencesync.permissions import SKYPE_FOR_BUSINESS_ONLINE, Profile


class ChangeWatch:
    """Which resources of the tenant this deployment created, updated or replaced."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.hook = pulumi.ResourceHook("tenant-changed", self._record)
        self.binding = pulumi.ResourceHookBinding(after_create=[self.hook], after_update=[self.hook])

    def _record(self, args: pulumi.ResourceHookArgs) -> None:
        self.changed.append(args.name)

    def after_all(self, resources: Sequence[pulumi.CustomResource], outputs: Mapping[str, Any],
                  step: Callable[[Mapping[str, Any]], Awaitable[None]]) -> None:
        """Run `step` with the resolved outputs once every resource is answered, if any of them changed."""
        async def run(values: list[Any]) -> None:
            if self.changed:
                pulumi.log.info(f"post-deploy: this deployment changed {', '.join(sorted(set(self.changed)))}")
                await step(values[-1])

        pulumi.Output.all(*(r.id for r in resources), pulumi.Output.from_input(outputs)).apply(run)  # type: ignore[arg-type]


def profile_switch_guard(consent: str, tenant_id: pulumi.Output[str], consent_url: Callable[[str, str], str]
                         ) -> pulumi.ResourceHook:
    """The application's before_update hook: a change of profile under `consent: manual` stops the step.

    The previous profile is read off the application's inputs in the state (the hook's old_inputs: the
    resource APIs it asked for), the only place that records what is deployed, with no extra resource or
    lookup; the hook runs before the provider's Update, and in a preview too (on_dry_run), so the pull
    request shows it.
    """
    async def guard(args: pulumi.ResourceHookArgs) -> None:
        before, after = _profile_of(args.old_inputs), _profile_of(args.new_inputs)
        if consent == "manual" and before and after and before != after:
            client_id = str((args.old_outputs or {}).get("clientId", "(client ID)"))
            url = consent_url(str(await tenant_id.future()), client_id)
            raise ProfileSwitchError(
                f"presencesync:profile: {before} to {after} with presencesync:consent: manual asks for new "
                f"permissions, which an admin must consent to again at {url}; switch with presencesync:consent: "
                "hook (deployed by a Privileged Role Administrator), then set manual again")

    return pulumi.ResourceHook("profile-switch", guard, opts=pulumi.ResourceHookOptions(on_dry_run=True))


class ProfileSwitchError(PresenceSyncError):
    """A change of profile that would leave the tenant without consent."""


def _profile_of(inputs: Mapping[str, Any] | None) -> Profile | None:
    """The profile whose resource APIs an application's inputs ask for."""
    asked = {access.get("resourceAppId") for access in (inputs or {}).get("requiredResourceAccesses") or []}
    if not asked:
        return None
    return "ucwa" if SKYPE_FOR_BUSINESS_ONLINE in asked else "graph"
