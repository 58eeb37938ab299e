"""Runs the real policy pack objects over recorded (or hand-written) resources.

The pack's policies are built exactly as `policy/__main__.py` builds them, and each is given
the same argument objects the Pulumi engine would give it: `ResourceValidationArgs` per
resource, `StackValidationArgs` with `PolicyResource`s (dependencies linked) for stack rules.
Props go through pulumi_policy's own unknown-checking proxy, so a preview's unknown values
behave as they do under `pulumi preview --policy-pack`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from eodh_jupyterhub.offline import RecordedResource, reveal
from policy import eodh_policies
from policy.eodh_policies import Violation


@dataclass(frozen=True)
class Declared:
    """A resource as the engine would declare it to the pack."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    urn: str = ""
    dependencies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.urn:
            # Hand-written resources live in a stack called "unit" unless a test says otherwise.
            object.__setattr__(
                self, "urn", f"urn:pulumi:unit::eodh-jupyterhub::{self.type}::{self.name}"
            )


def declared(resource: RecordedResource) -> Declared:
    return Declared(
        type=resource.type,
        name=resource.name,
        props=reveal(resource.inputs),
        protect=resource.protect,
        urn=resource.urn,
        dependencies=tuple(resource.depends_on),
    )


def _engine_value(value: Any) -> Any:
    """A recorded value as the engine serialises it: unknowns as the unknown sentinel."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, Mapping):
        return {k: _engine_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    return value


def _props(resource: Declared) -> Any:
    return unknown_checking_proxy(_engine_value(dict(resource.props)))


def _options(resource: Declared) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None
    )


def run_pack(
    resources: Iterable[Declared | RecordedResource],
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """Every policy of the pack over one stack's resources; the violations it reports."""
    items = [r if isinstance(r, Declared) else declared(r) for r in resources]
    violations: list[Violation] = []
    for policy in eodh_policies.policies():
        policy_config = dict((config or {}).get(policy.name) or {}) or None

        def report(message: str, urn: str | None = None, _policy: str = policy.name) -> None:
            names = [r.name for r in items if urn and r.urn == urn]
            violations.append(Violation(_policy, names[0] if names else "", message, urn or ""))

        if isinstance(policy, ResourceValidationPolicy):
            for item in items:
                args = ResourceValidationArgs(
                    item.type,
                    _props(item),
                    item.urn,
                    item.name,
                    _options(item),
                    None,
                    policy_config,
                )
                policy.validate(args, report)
        else:
            policy_resources = [
                PolicyResource(
                    item.type, _props(item), item.urn, item.name, _options(item), None, None, [], {}
                )
                for item in items
            ]
            by_urn = {r.urn: r for r in policy_resources}
            for item, resource in zip(items, policy_resources, strict=True):
                resource.dependencies = [by_urn[u] for u in item.dependencies if u in by_urn]
            policy.validate(StackValidationArgs(policy_resources, policy_config), report)
    return violations


def rules_violated(violations: Sequence[Violation]) -> set[str]:
    return {v.rule for v in violations}
