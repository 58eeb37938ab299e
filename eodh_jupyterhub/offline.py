"""Runs the real program (`__main__.py`) for one stack under recording Pulumi mocks.

This is how the tests and `make render` see what a stack declares without the Pulumi CLI or
cloud credentials. The mocks follow DESIGN.md's verified rules: non-empty ids, inputs echoed
as outputs, secrets kept secret, invokes answered, a fresh root and config for every run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
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
    if isinstance(value, pulumi.AssetArchive):
        # An archive of named assets: its names, and a digest over names and contents.
        digest = hashlib.sha256()
        names = sorted(value.assets)
        for name in names:
            member = value.assets[name]
            digest.update(name.encode() + b"\0")
            digest.update(json.dumps(describe_asset(member), sort_keys=True).encode())
        description["files"] = names
        description["sha256"] = digest.hexdigest()
        return description
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
    # What the engine would store: the id (always in clear) and the outputs, secret-wrapped
    # where the engine would encrypt them.
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    import_id: str = ""

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
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
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
        if typ in ("aws:lambda/function:Function", "aws:cloudwatch/eventRule:EventRule"):
            outputs.setdefault("name", resource_name)
        if typ == "aws:iam/role:Role":
            # IAM's unique id of a role: AROA + 17 characters (a stand-in drawn from the name).
            digest = hashlib.sha256(resource_name.encode()).hexdigest().upper()
            outputs.setdefault("uniqueId", "AROA" + digest[:17])
    return outputs


# What pulumi-random's resources compute, after terraform-provider-random (pinned by
# pulumi-random 4.21: internal/provider/resource_id.go, resource_bytes.go, resource_password.go,
# internal/random/string.go) and pulumi-random's provider/resources.go (computeRandomBytesID).
# Values are deterministic stand-ins drawn from the resource name; the ids are the real ones,
# so a value that reaches an id shows in tests exactly as it would in state.
RANDOM_ID = "random:index/randomId:RandomId"
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_STRING = "random:index/randomString:RandomString"
_DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


class MockProviderError(Exception):
    """What the real provider would refuse (bad arguments, an undecodable import id)."""


def _stand_in_bytes(name: str, count: int) -> bytes:
    stream = b""
    counter = 0
    while len(stream) < count:
        stream += hashlib.sha256(f"{name}/{counter}".encode()).digest()
        counter += 1
    return stream[:count]


def _int(inputs: dict[str, Any], key: str, default: int = 0) -> int:
    value = inputs.get(key)
    return default if value is None else int(value)


def _flag(inputs: dict[str, Any], key: str) -> bool:
    value = inputs.get(key)
    return True if value is None else bool(value)


def _random_string(name: str, inputs: dict[str, Any]) -> str:
    """resource_password.go / resource_string.go Create, through random.CreateString."""
    special = inputs.get("overrideSpecial") or _DEFAULT_SPECIAL
    classes = [
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _flag(inputs, "upper"), _int(inputs, "minUpper")),
        ("abcdefghijklmnopqrstuvwxyz", _flag(inputs, "lower"), _int(inputs, "minLower")),
        ("0123456789", _flag(inputs, "numeric"), _int(inputs, "minNumeric")),
        (special, _flag(inputs, "special"), _int(inputs, "minSpecial")),
    ]
    chars = "".join(c for c, enabled, _ in classes if enabled)
    if not chars:
        raise MockProviderError(f"{name}: the character set specified is empty")
    length = _int(inputs, "length")
    minimums = sum(n for *_, n in classes)
    if length < max(minimums, 1):
        # The provider's length validators: at least 1 and at least the sum of the minimums.
        raise MockProviderError(f"{name}: length {length} is below 1 or the sum of the minimums")
    required = [(c, n) for c, _, n in classes if n] + [(chars, length - minimums)]
    picks = _stand_in_bytes(name, 2 * length)
    result: list[str] = []
    for charset, count in required:
        for _ in range(count):
            index = int.from_bytes(picks[2 * len(result) : 2 * len(result) + 2], "big")
            result.append(charset[index % len(charset)])
    return "".join(result)


def _random_outputs(
    typ: str, name: str, inputs: dict[str, Any], import_id: str | None
) -> tuple[str, dict[str, Any]]:
    """The (id, outputs) the random provider gives: on create, or on import of `import_id`."""
    outputs = dict(inputs)
    if typ == RANDOM_ID:
        prefix = ""
        if import_id:
            prefix, _, encoded = import_id.rpartition(",")
            try:
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError) as error:
                raise MockProviderError(f"{name}: Import Random ID Error: {error}") from None
            outputs["byteLength"] = len(raw)
        else:
            prefix = str(inputs.get("prefix") or "")
            raw = _stand_in_bytes(name, _int(inputs, "byteLength"))
        resource_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        outputs.update(
            b64Url=prefix + resource_id,
            b64Std=prefix + base64.b64encode(raw).decode(),
            hex=prefix + raw.hex(),
            dec=prefix + str(int.from_bytes(raw, "big")),
        )
        return resource_id, outputs
    if typ == RANDOM_BYTES:
        if import_id:
            try:
                raw = base64.b64decode(import_id, validate=True)
            except (binascii.Error, ValueError) as error:
                raise MockProviderError(f"{name}: Import Random bytes Error: {error}") from None
            outputs["length"] = len(raw)
        else:
            raw = _stand_in_bytes(name, _int(inputs, "length"))
        encoded = base64.b64encode(raw).decode()
        outputs.update(base64=rpc.wrap_rpc_secret(encoded), hex=rpc.wrap_rpc_secret(raw.hex()))
        # computeRandomBytesID: the id is the base64 property, its secret unwrapped.
        return encoded, outputs
    if typ in (RANDOM_PASSWORD, RANDOM_STRING):
        if import_id:
            result = import_id
            outputs = {
                "length": len(result),
                **{k: True for k in ("upper", "lower", "numeric", "number", "special")},
                **{k: 0 for k in ("minUpper", "minLower", "minNumeric", "minSpecial")},
            }
        else:
            result = _random_string(name, inputs)
        if typ == RANDOM_STRING:
            # resource_string.go: the id is the result itself, and nothing is Sensitive.
            outputs["result"] = result
            return result, outputs
        outputs["result"] = rpc.wrap_rpc_secret(result)
        outputs["bcryptHash"] = rpc.wrap_rpc_secret(
            "$2a$10$" + hashlib.sha256(result.encode()).hexdigest()[:53]
        )
        return "none", outputs
    raise MockProviderError(f"the offline mocks do not model {typ}")


# Ids as each provider sets them (pulumi-aws's Import sections; pulumi-kubernetes: objects are
# <namespace>/<name> or <name>, a Helm release <namespace>/<name>; a bucket is its name, so its
# configuration resources, whose `bucket` input is the bucket's id, are too). Roles keep the
# `<name>-id` stand-in for now: tests and tools elsewhere still read it.
_ID_BY_INPUT = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/eventRule:EventRule": "name",
    "aws:lambda/function:Function": "name",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": "functionName",
    "aws:lambda/permission:Permission": "statementId",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "arn",
    "aws:sqs/queue:Queue": "url",
}


def _cloud_id(
    typ: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any], custom: bool
) -> str:
    if not custom:
        return ""  # component resources have no id
    if typ == "kubernetes:helm.sh/v3:Release":
        return f"{inputs.get('namespace') or 'default'}/{inputs.get('name') or name}"
    if typ.startswith("kubernetes:"):
        metadata = inputs.get("metadata") or {}
        return "/".join(p for p in (metadata.get("namespace"), metadata.get("name") or name) if p)
    if typ.startswith("aws:s3/bucket") and typ != "aws:s3/bucket:Bucket":
        # Every bucket sub-resource (policy, versioning, notification, ...) is the bucket's.
        return str(inputs.get("bucket") or f"{name}-id")
    if typ == "aws:iam/rolePolicy:RolePolicy":
        return f"{inputs.get('role')}:{inputs.get('name') or name}"
    key = _ID_BY_INPUT.get(typ)
    if key and isinstance(outputs.get(key), str):
        return outputs[key]
    if typ == "aws:lambda/permission:Permission":
        return str(inputs.get("statementId") or name)
    return f"{name}-id"


class _RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, recording: Recording):
        self.recording = recording
        # additionalSecretOutputs of the registration in progress (set by the monitor).
        self.pending_secret_outputs: set[str] = set()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ.startswith("random:"):
            resource_id, outputs = _random_outputs(
                args.typ, args.name, args.inputs, args.resource_id or None
            )
        else:
            outputs = _computed_outputs(args.typ, args.name, args.inputs)
            resource_id = _cloud_id(args.typ, args.name, args.inputs, outputs, bool(args.custom))
        # The engine makes these outputs secret; it refuses to for the id (it stays in clear).
        for key in self.pending_secret_outputs - {"id"}:
            if key in outputs and not rpc.is_rpc_secret(outputs[key]):
                outputs[key] = rpc.wrap_rpc_secret(outputs[key])
        for value in outputs.values():
            if rpc.is_rpc_secret(value) and isinstance(rpc.unwrap_rpc_secret(value), str):
                self.recording.generated_secrets.add(rpc.unwrap_rpc_secret(value))
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
        if args.token == "aws:s3/getBucket:getBucket":
            # An existing bucket, looked up by name (a shared bucket the stack does not own).
            bucket = str(args.args["bucket"])
            return {
                "id": bucket,
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "region": MOCK_REGION,
                "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{bucket}.s3.{MOCK_REGION}.amazonaws.com",
                "hostedZoneId": "Z3GKZC51ZF0DB4",
            }, []
        if args.token in answers:
            # Pulumi's MockMonitor iterates the failures: an empty list, never None.
            return answers[args.token], []
        raise NotImplementedError(f"the offline mocks do not answer invoke {args.token}")


class _RecordingMonitor(MockMonitor):
    """Sees every registration with its options, which `Mocks.new_resource` is not given."""

    def __init__(self, mocks: _RecordingMocks):
        super().__init__(mocks)
        self.recording = mocks.recording

    def RegisterResource(self, request):
        self.mocks.pending_secret_outputs = set(request.additionalSecretOutputs)
        try:
            response = super().RegisterResource(request)
        finally:
            self.mocks.pending_secret_outputs = set()
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
                    id=response.id,
                    outputs=self.resources[response.urn].state,
                    import_id=request.importId,
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
