"""Run the real Pulumi program under Pulumi's mock engine and record what it would register.

`check` uses this to list a stack's resources without the Pulumi CLI or credentials; the tests use
it to inspect the resource graph, and, given the plan of a previous run, to replay a later `pulumi up`
step by step as the engine would (create, update, replace or same, with the hooks each step runs).
The recording monitor keeps each registration's resource options
(protect, ignoreChanges, retainOnDelete) and the stack outputs as the engine would receive them, so
secretness is read off the wire format rather than assumed.
"""

from __future__ import annotations

import asyncio
import runpy
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import callback_pb2, callback_pb2_grpc, resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from presencesync import provider_schema
from presencesync.config import Settings
from presencesync.permissions import PROFILES, PUBLISHED_IDS, Profile

PROGRAM = Path(__file__).resolve().parent.parent / "__main__.py"
PROJECT = "presencesync"
# How the engine marks a secret value on the wire (pulumi/sdk rpc.py).
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


@dataclass(frozen=True)
class ResourceApi:
    """A resource API's service principal as the tenant has it."""

    object_id: str
    scopes: Mapping[str, str]  # delegated scope value -> ID
    roles: Mapping[str, str] = field(default_factory=dict)  # app role value -> ID


@dataclass(frozen=True)
class TenantFacts:
    """What the mock engine answers in place of the tenant's directory."""

    tenant_id: str
    deployer_object_id: str
    default_domain: str
    resource_apis: Mapping[str, ResourceApi]  # by app ID
    users: Mapping[str, str]  # user principal name -> object ID


@dataclass(frozen=True)
class SecretValue:
    """A stack output the engine would store encrypted."""

    value: Any


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    id: str = ""  # what the engine answered; here the mock's object ID
    after_create_hooks: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)  # URNs
    after_update_hooks: list[str] = field(default_factory=list)
    operation: str = "create"  # create, update, replace or same, against the previous run
    state: dict[str, Any] = field(default_factory=dict)  # what the provider answered (the outputs)
    urn: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.parent, self.type, self.name


@dataclass
class Plan:
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hook_errors: list[str] = field(default_factory=list)  # with run_hooks: what fails the deployment
    hooks_run: list[str] = field(default_factory=list)  # "<hook kind> <hook name> of <resource>", in order
    deleted: list[Registration] = field(default_factory=list)  # what the engine deletes after the program
    error: str | None = None  # with hook_timeout: the program's failure, which fails `pulumi up`

    def operations(self) -> dict[str, str]:
        """Each custom resource's step, by resource name."""
        return {r.name: r.operation for r in self.resources if r.type.startswith("azuread:")}

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Registration:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]


def placeholder_facts(settings: Settings) -> TenantFacts:
    """What `check` shows in place of values only the tenant knows."""
    apis = PROFILES[settings.profile]
    upn = settings.sync_user.user_principal_name
    return TenantFacts(
        tenant_id="(directory tenant ID)",
        deployer_object_id="(deployer's object ID)",
        default_domain="(tenant's default domain)",
        resource_apis={api.app_id: ResourceApi(
            f"({api.api} service principal's object ID)",
            {s: _placeholder_id(api.app_id, "Scope", s) for s in api.scopes},
            {r: _placeholder_id(api.app_id, "Role", r) for r in api.roles},
        ) for api in apis},
        users={upn: f"(object ID of {upn})"},
    )


def placeholder_ids(profile: Profile) -> dict[tuple[str, str], frozenset[str]]:
    """The permission IDs `check` takes a tenant to have: the published ones, else placeholders."""
    return {(api.app_id, kind): frozenset(_placeholder_id(api.app_id, kind, name) for name in names)
            for api in PROFILES[profile] for kind, names in (("Scope", api.scopes), ("Role", api.roles))}


def _placeholder_id(app_id: str, kind: str, name: str) -> str:
    return PUBLISHED_IDS.get((app_id, kind, name), f"(ID of {name} in the tenant)")


# Stands for the provider: (type token, resource name, state, "create" or "update") -> the state it answers.
Provider = Callable[[str, str, dict[str, Any], str], dict[str, Any]]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, facts: TenantFacts, plan: Plan, provider: Provider | None) -> None:
        self.facts = facts
        self.plan = plan
        self.provider = provider
        self.steps: dict[tuple[str, str], tuple[str, Registration | None]] = {}  # decided by the monitor

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        operation, old = self.steps.get((args.typ, args.name), ("create", None))
        if old is not None and operation in ("same", "update"):  # the engine keeps the ID
            state = old.state if operation == "same" else {**old.state, **args.inputs}
            if operation == "update" and self.provider is not None:
                state = self.provider(args.typ, args.name, state, "update")
            return old.id, state
        # A replacement is a new object beside the old one (create before delete).
        object_id = str(uuid.uuid4() if old else uuid.uuid5(uuid.NAMESPACE_URL, f"{args.typ}/{args.name}"))
        state = {**args.inputs, "objectId": object_id}
        kind = args.typ.rsplit(":", 1)[-1]
        if kind == "Application":
            state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{args.name}"))
        if kind == "ApplicationPassword":
            state.update(keyId=object_id, value="(generated by Entra ID at pulumi up)")
        if self.provider is not None:
            state = self.provider(args.typ, args.name, state, "create")
        return (f"/applications/{state['objectId']}" if kind == "Application" else state["objectId"]), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        self.plan.invokes.append((args.token, dict(args.args)))
        facts = self.facts
        if args.token == "azuread:index/getClientConfig:getClientConfig":
            return {"clientId": "(deployer)", "objectId": facts.deployer_object_id, "tenantId": facts.tenant_id}
        if args.token == "azuread:index/getDomains:getDomains":
            return {"domains": [{"domainName": facts.default_domain, "default": True, "verified": True}]}
        if args.token == "azuread:index/getServicePrincipals:getServicePrincipals":
            present = [a for a in args.args["clientIds"] if a in facts.resource_apis]
            return {"clientIds": present, "objectIds": [facts.resource_apis[a].object_id for a in present],
                    "servicePrincipals": [{"clientId": a, "objectId": facts.resource_apis[a].object_id}
                                          for a in present]}
        if args.token == "azuread:index/getServicePrincipal:getServicePrincipal":
            app_id = args.args["clientId"]
            sp = facts.resource_apis[app_id]
            return {"clientId": app_id, "objectId": sp.object_id, "oauth2PermissionScopeIds": dict(sp.scopes),
                    "appRoleIds": dict(sp.roles)}
        if args.token == "azuread:index/getUser:getUser":
            upn = args.args["userPrincipalName"]
            return {"objectId": facts.users[upn], "userPrincipalName": upn}
        raise NotImplementedError(f"the offline plan has no answer for {args.token}")


def _on_closed_loop(call: Callable[[], Any]) -> Any:
    """Run a monitor call from an executor thread on a loop that is closed when the call ends.

    The SDK calls the mock monitor from worker threads, and the monitor opens an event loop on each
    (pulumi.runtime.sync_await._ensure_event_loop) that nobody closes. Left to the garbage collector
    at interpreter exit, such a loop's self-pipe socket may be finalized before the loop, whose own
    __del__ then prints a traceback. The main thread keeps the loop run_program gave it.
    """
    if threading.current_thread() is threading.main_thread():
        return call()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return call()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks, plan: Plan, hook_timeout: float | None, previous: Plan | None) -> None:
        super().__init__(mocks)
        self.recording = mocks
        self.plan = plan
        self.hook_timeout = hook_timeout  # None: a preview, which runs only hooks marked on_dry_run
        self.previous = {r.key: r for r in previous.resources} if previous else {}
        self.hooks: dict[str, Any] = {}  # name -> the SDK's RegisterResourceHook request
        self.channels: list[grpc.Channel] = []

    def RegisterResourceHook(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.hooks[request.name] = request
        return super().RegisterResourceHook(request)  # type: ignore[no-untyped-call]

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        return _on_closed_loop(lambda: super(_RecordingMonitor, self).Invoke(request))  # type: ignore[no-untyped-call]

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        """Decide the step as the engine's step generator does, then run it with its hooks.

        pkg/resource/deploy/step_generator.go: a resource not in the old state is a create; one whose
        provider Diff reports no change is `same` (SameStep.Apply returns the old outputs and runs no
        hooks); a ForceNew change is a replace (NewCreateReplacementStep: a CreateStep, so after_create
        hooks; the old one is deleted after the program); any other change is an update (UpdateStep.Apply:
        before_update hooks before the provider's Update, whose failure fails the step, after_update after).
        The provider's Diff is modelled by provider_schema.diff.
        """
        inputs = _plain(json_format.MessageToDict(request.object))
        old = self.previous.get((request.parent, request.type, request.name))
        operation = "create" if old is None else provider_schema.diff(request.type, old.inputs, inputs).operation \
            if request.custom else "same" if old.inputs == inputs else "update"  # a component: its inputs alone
        self.recording.steps[(request.type, request.name)] = (operation, old)
        if operation == "update":
            for name in request.hooks.before_update:
                if error := self._run_hook("before_update", name, request, None, old):
                    raise RuntimeError(error)  # the step fails: the provider is never called
        response = _on_closed_loop(
            lambda: super(_RecordingMonitor, self).RegisterResource(request))  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.plan.resources.append(Registration(
                type=request.type, name=request.name, inputs=inputs, parent=request.parent,
                protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges), id=response.id,
                after_create_hooks=list(request.hooks.after_create), depends_on=list(request.dependencies),
                after_update_hooks=list(request.hooks.after_update), operation=operation,
                state=_plain(json_format.MessageToDict(response.object)), urn=response.urn))
            if old is not None and operation == "replace":
                self.plan.deleted.append(old)
        kind = {"create": "after_create", "replace": "after_create", "update": "after_update"}.get(operation)
        if kind and request.custom:
            for name in getattr(request.hooks, kind):
                if error := self._run_hook(kind, name, request, response, old):
                    self.plan.hook_errors.append(error)
        return response

    def _run_hook(self, kind: str, name: str, request: Any, response: Any, old: Registration | None) -> str | None:
        """Call a hook as the engine does, before the registration is answered; returns its error.

        The engine (pkg/resource/deploy/step.go, `CreateStep.Apply` / `UpdateStep.Apply`) runs a custom
        resource's after hooks right after the provider's create or update and only then returns the
        `complete` callback that answers the program's RegisterResource (source_eval.go waits on the step).
        It calls the SDK's callback server (source_eval.go, `wrapResourceHookCallback`: `Callbacks.Invoke`
        with a ResourceHookRequest carrying the new and old inputs and outputs, secrets kept) and waits with
        no timeout (deployment.go, `RunHooks`, which in a preview skips hooks not marked on_dry_run); an after
        hook's error fails the deployment once the step is done. The timeout here stands for "would hang";
        the provider marks secret outputs secret, modelled by the registration's additionalSecretOutputs.
        """
        hook = self.hooks[name]
        if self.hook_timeout is None and not hook.on_dry_run:
            return None
        self.plan.hooks_run.append(f"{kind} {name} of {request.name}")
        outputs = json_format.MessageToDict(response.object) if response is not None else {}
        for key in request.additionalSecretOutputs:
            if key in outputs:
                outputs[key] = {_SIG_KEY: _SECRET_SIG, "value": outputs[key]}
        olds = {} if old is None else {"old_inputs": json_format.ParseDict(_wire(old.inputs), struct_pb2.Struct()),
                                       "old_outputs": json_format.ParseDict(_wire(old.state), struct_pb2.Struct())}
        hook_request = resource_pb2.ResourceHookRequest(
            urn=response.urn if response is not None else "", id=response.id if response is not None else old.id
            if old else "", name=request.name, type=request.type, new_inputs=request.object,
            new_outputs=json_format.ParseDict(outputs, struct_pb2.Struct()), **olds)
        channel = grpc.insecure_channel(hook.callback.target)
        self.channels.append(channel)  # closed when the program is done: a late hook may still answer
        call = callback_pb2_grpc.CallbacksStub(channel).Invoke.future(callback_pb2.CallbackInvokeRequest(
            token=hook.callback.token, request=hook_request.SerializeToString()))
        phase = kind.split("_")[0]
        try:
            answer = call.result(timeout=self.hook_timeout)
        except grpc.FutureTimeoutError:
            # Not cancelled: cancelling would also cancel the Outputs the hook awaits, which the engine
            # never does. The registration is answered, so such a hook finishes late, after the fact.
            return (f"{phase} hook {name!r} of {request.name}: did not return within "
                    f"{self.hook_timeout:g} s (the engine waits for ever: pulumi up would hang)")
        except grpc.RpcError as failed:
            return f"{phase} hook {name!r} of {request.name}: {failed.details()}"
        error = resource_pb2.ResourceHookResponse.FromString(answer.response).error
        return f"{phase} hook {name!r} of {request.name} failed: {error}" if error else None

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if "pulumi:pulumi:Stack" in request.urn:
            self.plan.outputs = _plain(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def run_program(config: Mapping[str, str], facts: TenantFacts, *, secret_keys: tuple[str, ...] = (),
                stack: str = "dev", program: Path | Callable[[], None] = PROGRAM,
                hook_timeout: float | None = None, provider: Provider | None = None,
                previous: Plan | None = None) -> Plan:
    """Run `program` (a program file, or a function doing what one does) with `config` against the
    mock engine and return what it registered.

    With `hook_timeout`, hooks run as under `pulumi up` (see `_RecordingMonitor._run_hook`): what failed
    is in `Plan.hook_errors`, and an error the program raises (which fails `pulumi up`) in `Plan.error`;
    without, only hooks marked on_dry_run run, as in `pulumi preview`, and the program's errors (config
    problems, pulumi.RunError) propagate to the caller. With `previous` (the plan of the last run, as
    its state), each resource's step is decided against it, and `Plan.deleted` lists what the engine
    deletes once the program is done.
    """
    plan = Plan()
    mocks = _Mocks(facts, plan, provider)
    monitor = _RecordingMonitor(mocks, plan, hook_timeout, previous)
    loop = asyncio.new_event_loop()  # the SDK runs on the current loop; start clean
    # A failing program leaves sibling tasks failed with the same error, which run_in_stack already
    # raised to the caller; without this handler asyncio would print them again at exit.
    loop.set_exception_handler(lambda *_: None)
    asyncio.set_event_loop(loop)
    pulumi_settings.ROOT.set(None)
    pulumi_settings.SETTINGS.rpc_manager.clear()  # a failed earlier run leaves its errors here
    pulumi_settings.SETTINGS.outputs.clear()
    set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             monitor=monitor)
    pulumi_settings.ROOT.set(None)  # set_mocks made a bare root stack; the program gets its own

    def run() -> None:
        if callable(program):
            program()
        else:
            runpy.run_path(str(program), run_name="__main__")

    try:
        _sync_await(run_in_stack(run))
    except asyncio.CancelledError:
        # A hook that hung (see `_RecordingMonitor._run_hook`) is still running when the program ends, and
        # the SDK's shutdown cancels it: the hang is the result, already in the plan.
        if not plan.hook_errors:
            raise
    except Exception as failed:  # under pulumi up, any error of the program fails the deployment
        if hook_timeout is None:
            raise
        plan.error = str(failed)
    finally:
        for channel in monitor.channels:
            channel.close()
        # Closed here rather than by the garbage collector: at interpreter exit the loop's self-pipe
        # socket may be finalized first, and the loop's own __del__ then prints a traceback.
        loop.close()
        asyncio.set_event_loop(None)
    if previous is not None and plan.error is None:  # the engine deletes only after a program that succeeded
        registered = {r.key for r in plan.resources}
        plan.deleted += [r for r in previous.resources if r.key not in registered]
    return plan


def _wire(value: Any) -> Any:
    """Plain values back in the wire format, secrets marked as the engine marks them."""
    if isinstance(value, SecretValue):
        return {_SIG_KEY: _SECRET_SIG, "value": _wire(value.value)}
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Wire values as plain Python, with secrets wrapped in SecretValue."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return SecretValue(_plain(value.get("value")))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
