"""A ValidatingAdmissionPolicy evaluated the way the API server does, with a real CEL engine.

The API server (k8s.io/apiserver pkg/admission/plugin/policy/validating) takes a request
through a policy in this order: the policy's matchConstraints.resourceRules select it by
group, version, resource/subresource and operation; every matchCondition must be true;
then every validation must be true, else the request is refused with that validation's
message. An expression that errors counts as a failure under failurePolicy Fail (the only
policy this project declares), so a missing ``has()`` guard refuses in a test as it would
in a cluster. CEL is evaluated by cel-python (celpy), an implementation of the CEL spec;
the API server's extra libraries are not used by the policies here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import celpy

_ENV = celpy.Environment()


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionRequest a policy sees as ``request``."""

    operation: str
    resource: str
    namespace: str = ""
    name: str = ""
    group: str = ""
    version: str = "v1"
    subresource: str = ""
    username: str = "system:serviceaccount:jupyter:hub"

    def as_cel(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "resource": {"group": self.group, "version": self.version, "resource": self.resource},
            "subResource": self.subresource,
            "name": self.name,
            "namespace": self.namespace,
            "userInfo": {"username": self.username},
        }


def _rule_matches(rule: dict[str, Any], request: Request) -> bool:
    def listed(values: list[str], value: str) -> bool:
        return "*" in values or value in values

    target = f"{request.resource}/{request.subresource}" if request.subresource else None
    resources = rule["resources"]
    if target is None:
        resource_ok = "*" in resources or "*/*" in resources or request.resource in resources
    else:
        resource_ok = (
            "*/*" in resources
            or target in resources
            or f"{request.resource}/*" in resources
            or f"*/{request.subresource}" in resources
        )
    return (
        listed(rule["apiGroups"], request.group)
        and listed(rule["apiVersions"], request.version)
        and listed(rule["operations"], request.operation)
        and resource_ok
    )


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    """The expression's value, or the CELEvalError it produced (celpy returns or raises it)."""
    program = _ENV.program(_ENV.compile(expression))
    try:
        return program.evaluate(activation)
    except celpy.CELEvalError as error:
        return error


def refusals(
    policy: dict[str, Any], request: Request, obj: dict[str, Any] | None = None
) -> list[str] | None:
    """None when the policy does not apply; otherwise the messages of failed validations."""
    spec = policy["spec"]
    if spec.get("failurePolicy") != "Fail":
        raise AssertionError("only failurePolicy Fail is modelled")
    if not any(_rule_matches(r, request) for r in spec["matchConstraints"]["resourceRules"]):
        return None
    activation = {
        "request": celpy.json_to_cel(request.as_cel()),
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(None),
    }
    for condition in spec.get("matchConditions") or []:
        matched = _evaluate(condition["expression"], activation)
        if isinstance(matched, celpy.CELEvalError):
            return [f"match condition {condition['name']} failed: {matched}"]
        if matched != celpy.celtypes.BoolType(True):
            return None
    failed = []
    for validation in spec["validations"]:
        passed = _evaluate(validation["expression"], activation)
        if isinstance(passed, celpy.CELEvalError):
            failed.append(f"{validation['message']} (expression error: {passed})")
        elif passed != celpy.celtypes.BoolType(True):
            failed.append(validation["message"])
    return failed
