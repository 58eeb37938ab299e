"""Runs the real program (`__main__.py`) for one stack under recording Pulumi mocks.

This is how the tests and `make render` see what a stack declares without the Pulumi CLI or
cloud credentials. The mocks follow DESIGN.md's verified rules: non-empty ids, inputs echoed
as outputs, secrets kept secret, invokes answered, a fresh root and config for every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from .stack_config import PROJECT_ROOT, project_name, pulumi_config

SECRET_PLACEHOLDER = "[secret]"
# Stands in for the AWS account in ids and ARNs the mocks invent; never a real account.
MOCK_ACCOUNT = "000000000000"


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """`value` rebuilt with `leaf` applied to everything that is not a dict or a list."""
    if isinstance(value, dict):
        return {k: map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(v, leaf) for v in value]
    return leaf(value)


def reveal(value: Any) -> Any:
    """The value with secrets unwrapped: only for assertions in tests, never for output."""
    if rpc.is_rpc_secret(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def describe_asset(value: pulumi.Asset | pulumi.Archive) -> dict[str, Any]:
    """A stable, reviewable stand-in for an asset: its kind, path and content digest."""
    path = getattr(value, "path", None)
    description: dict[str, Any] = {"kind": type(value).__name__}
    if path is not None:
        root = Path(path)
        description["path"] = str(root.relative_to(PROJECT_ROOT) if root.is_absolute() else root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        digest = hashlib.sha256()
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root.parent)).encode() + b"\0")
            digest.update(file.read_bytes())
        description["sha256"] = digest.hexdigest()
    return description


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent_urn: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    depends_on: list[str]
    aliases: list[str]

    @property
    def parent_name(self) -> str | None:
        return self.parent_urn.rsplit("::", 1)[-1] if self.parent_urn else None

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return reveal(self.inputs)


@dataclass
class Recording:
    stack: str
    preview: bool
    resources: list[RecordedResource] = field(default_factory=list)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    # Every secret value the mocks generated. Nested secretness is lost when Pulumi lifts it
    # to the top-level property (e.g. Helm values), so redaction also goes by value.
    generated_secrets: set[str] = field(default_factory=set)

    def redacted(self, value: Any) -> Any:
        """The value revealed, with every generated secret replaced by the placeholder and
        assets described, ready to write to disk."""

        def leaf(item: Any) -> Any:
            if isinstance(item, (pulumi.Asset, pulumi.Archive)):
                return describe_asset(item)
            if isinstance(item, str) and item in self.generated_secrets:
                return SECRET_PLACEHOLDER
            return item

        return map_leaves(reveal(value), leaf)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r} in stack {self.stack}")
        return matches[0]

    def children_of(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent_urn == parent.urn]

    def kubernetes_objects(self) -> list[RecordedResource]:
        return [
            r
            for r in self.resources
            if r.custom and r.type.startswith("kubernetes:") and "apiVersion" in r.inputs
        ]


MOCK_REGION = "eu-west-2"

# ARN shapes of the resource types this program declares, as AWS would assign them.
_ARN_FORMATS = {
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": (
        "arn:aws:iam::{account}:oidc-provider/{url}"
    ),
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:lambda/function:Function": "arn:aws:lambda:{region}:{account}:function:{name}",
}


def _computed_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs a real provider would compute and dependants read (ARNs, names, ids)."""
    outputs = dict(inputs)
    if typ.startswith("aws:"):
        service = typ.split(":")[1].split("/")[0]
        resource_name = inputs.get("name") or inputs.get("bucket") or name
        url = str(inputs.get("url", "")).removeprefix("https://")
        arn_format = _ARN_FORMATS.get(typ, "arn:aws:{service}:{region}:{account}:{name}")
        outputs.setdefault(
            "arn",
            arn_format.format(
                account=MOCK_ACCOUNT,
                region=MOCK_REGION,
                service=service,
                name=resource_name,
                url=url,
            ),
        )
        if typ in ("aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup"):
            outputs.setdefault("name", resource_name)
        if typ == "aws:s3/bucket:Bucket":
            outputs.setdefault("bucket", resource_name)
        if typ == "aws:sqs/queue:Queue":
            outputs.setdefault("name", resource_name)
            outputs["url"] = (
                f"https://sqs.{MOCK_REGION}.amazonaws.com/{MOCK_ACCOUNT}/{resource_name}"
            )
        if typ == "aws:lambda/function:Function":
            outputs.setdefault("name", resource_name)
    if typ == "random:index/randomId:RandomId":
        # Deterministic stand-in for 32 random bytes, secret as the real provider's would be.
        outputs["hex"] = rpc.wrap_rpc_secret(hashlib.sha256(name.encode()).hexdigest())
    return outputs


class _RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, recording: Recording):
        self.recording = recording

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        outputs = _computed_outputs(args.typ, args.name, args.inputs)
        for value in outputs.values():
            if rpc.is_rpc_secret(value) and isinstance(rpc.unwrap_rpc_secret(value), str):
                self.recording.generated_secrets.add(rpc.unwrap_rpc_secret(value))
        if args.typ.startswith("kubernetes:"):
            # Kubernetes objects are known by namespace/name; keep ids readable.
            metadata = args.inputs.get("metadata") or {}
            resource_id = "/".join(
                p for p in (metadata.get("namespace"), metadata.get("name") or args.name) if p
            )
        else:
            resource_id = f"{args.name}-id"
        return resource_id, outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.recording.invokes.append((args.token, dict(args.args)))
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": MOCK_ACCOUNT,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/offline",
                "userId": "offline",
                "id": MOCK_ACCOUNT,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:index/getRegion:getRegion": {
                "name": MOCK_REGION,
                "region": MOCK_REGION,
                "id": MOCK_REGION,
            },
        }
        if args.token in answers:
            return answers[args.token], None
        raise NotImplementedError(f"the offline mocks do not answer invoke {args.token}")


class _RecordingMonitor(MockMonitor):
    """Sees every registration with its options, which `Mocks.new_resource` is not given."""

    def __init__(self, mocks: _RecordingMocks):
        super().__init__(mocks)
        self.recording = mocks.recording

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.resources.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent_urn=request.parent,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    depends_on=list(request.dependencies),
                    aliases=[a.urn or a.spec.name for a in request.aliases]
                    + list(request.aliasURNs),
                )
            )
        return response


async def _resolve_outputs(recording: Recording) -> None:
    stack = get_root_resource()
    for key, value in sorted(getattr(stack, "outputs", {}).items()):
        output = pulumi.Output.from_input(value)
        recording.outputs[key] = await output.future(with_unknowns=True)
        if await output.is_secret():
            recording.secret_outputs.add(key)


def run_stack(stack: str, preview: bool = False) -> Recording:
    """Run `__main__.py` for `stack` under mocks and return everything it declared.

    Raises whatever the program raises (a SettingsError for bad config) after the runtime
    has settled, exactly as `pulumi preview` would report it.
    """
    return run_with_config(stack, pulumi_config(stack), preview=preview)


def run_main(recording: Recording) -> None:
    runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")


def run_with_config(
    stack: str,
    config: dict[str, str],
    preview: bool = False,
    program: Callable[[Recording], None] = run_main,
    recording: Recording | None = None,
) -> Recording:
    """Run `program` (by default the real `__main__.py`) with `config` as the stack's config.

    Pass your own `recording` to inspect what was registered even when the program raises.
    """
    recording = recording or Recording(stack=stack, preview=preview)
    # Each run on a fresh loop: whatever ran before (another run, asyncio.run) may have
    # closed or unset the current one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = _RecordingMocks(recording)
    project = project_name()
    pulumi.runtime.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=preview, monitor=_RecordingMonitor(mocks)
    )

    async def run() -> None:
        program(recording)
        await _resolve_outputs(recording)

    try:
        _sync_await(run_pulumi_func(run))
    finally:
        asyncio.set_event_loop(asyncio.new_event_loop())
    return recording
