"""The whole pack over every stack, as `pulumi up` and as `pulumi preview` declare it.

This is how CI enforces the pack without the Pulumi CLI: the real program runs under the
recording mocks and the pack's policies see the same argument objects the engine gives them.
Removing a part the rules require from a real recording makes the matching rule fire, so the
zero-violation result is not the rules seeing nothing.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import yaml

from eodh_jupyterhub.offline import Recording
from policy import eodh_policies
from policy.eodh_policies import check_resources
from tests.policy.adapter import declared, run_pack
from tests.support.bucket_modes import recording_in_mode
from tests.support.recordings import recording_for

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def test_the_pack_passes_every_stack(recording: Recording):
    violations = run_pack(recording.resources)
    assert [str(v) for v in violations] == []


def test_check_resources_passes_every_rendered_stack(stack: str):
    """`make check`'s entry point, over resources shaped as build/<stack>/resources.json
    (inputs with secrets redacted, plus each resource's URN and dependencies)."""
    recording = recording_for(stack)
    rendered = [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "inputs": recording.redacted(r.inputs),
            "protect": r.protect,
            "dependencies": list(r.depends_on),
        }
        for r in recording.resources
    ]
    assert [str(v) for v in check_resources(rendered, stack=stack)] == []
    # The stack argument decides protection when the dicts carry no URN.
    unprotected = [d | {"urn": "", "protect": False} for d in rendered]
    fired = {v.rule for v in check_resources(unprotected, stack="prod")}
    guarded = {
        eodh_policies.BUCKET,
        eodh_policies.OIDC_PROVIDER,
        eodh_policies.NAMESPACE,
        eodh_policies.HELM_RELEASE,
    }
    if any(d["type"] in guarded for d in rendered):
        assert "protected-data" in fired
    else:
        # A shared bucket and a referenced provider: this stack holds no data or trust.
        assert not any(d["protect"] for d in rendered)


# Each rule, and what to take out of (or change in) the prod recording to make it fire.
def _without(types: set[str]):
    return lambda resources: [r for r in resources if r.type not in types]


def _edit(type_: str, edit):
    def apply(resources):
        edited = []
        for r in resources:
            item = declared(r)
            if item.type == type_:
                item = type(item)(**(vars(item) | {"props": edit(dict(item.props))}))
            edited.append(item)
        return edited

    return apply


MUTATIONS = {
    "s3-bucket-encrypted": _without({eodh_policies.ENCRYPTION}),
    "s3-bucket-public-access-blocked": _without({eodh_policies.PUBLIC_ACCESS_BLOCK}),
    "s3-bucket-versioned": _without({eodh_policies.VERSIONING}),
    "s3-bucket-tls-only": _without({eodh_policies.BUCKET_POLICY}),
    "lambda-on-failure-destination": _without({eodh_policies.LAMBDA_INVOKE_CONFIG}),
    "lambda-failures-alarmed": _without({eodh_policies.METRIC_ALARM}),
    "lambda-marker-present": _without({eodh_policies.BUCKET_NOTIFICATION}),
    "lambda-reserved-concurrency": _edit(
        eodh_policies.LAMBDA_FUNCTION,
        lambda p: {k: v for k, v in p.items() if k != "reservedConcurrentExecutions"},
    ),
    "lambda-permission-source": _edit(
        eodh_policies.LAMBDA_PERMISSION, lambda p: {k: v for k, v in p.items() if k != "sourceArn"}
    ),
    "k8s-namespace-linkerd": _edit(
        eodh_policies.NAMESPACE,
        lambda p: p | {"metadata": p["metadata"] | {"annotations": {}}},
    ),
    "k8s-cluster-role-no-wildcards": _edit(
        eodh_policies.CLUSTER_ROLE,
        lambda p: p | {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]},
    ),
    "k8s-ingress-header-guard": _edit(
        eodh_policies.INGRESS,
        lambda p: (
            p
            | {
                "metadata": p["metadata"]
                | {
                    "annotations": {
                        k: v
                        for k, v in p["metadata"]["annotations"].items()
                        if k != eodh_policies.SNIPPET_ANNOTATION
                    }
                }
            }
        ),
    ),
    "iam-session-tag-rules": _edit(
        eodh_policies.ROLE,
        lambda p: (
            p
            | {
                "assumeRolePolicy": p["assumeRolePolicy"].replace(
                    '"ForAllValues:StringEquals"', '"ForAnyValue:StringEquals"'
                )
            }
        ),
    ),
    "iam-web-identity-trust-pinned": _edit(
        eodh_policies.ROLE,
        lambda p: p | {"assumeRolePolicy": p["assumeRolePolicy"].replace(":aud", ":sub")},
    ),
    "iam-no-wildcards": _edit(
        eodh_policies.ROLE_POLICY,
        lambda p: p | {"policy": p["policy"].replace('"s3:GetObject"', '"s3:*"')},
    ),
}


# In the shared-bucket mode the stack declares no bucket configuration for the S3 rules to
# judge, and the marker function is reached through EventBridge instead of a notification.
SHARED_MODE_MUTATIONS = {
    rule: mutation for rule, mutation in MUTATIONS.items() if not rule.startswith("s3-")
} | {"lambda-marker-present": _without({eodh_policies.EVENT_TARGET})}


@pytest.mark.parametrize(
    ("manage", "rule"),
    [(True, rule) for rule in sorted(MUTATIONS)]
    + [(False, rule) for rule in sorted(SHARED_MODE_MUTATIONS)],
    ids=lambda v: {True: "managed-bucket", False: "shared-bucket"}.get(v, v),
)
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_each_rule_fires_on_a_broken_prod_recording(manage: bool, rule: str, preview: bool):
    mutations = MUTATIONS if manage else SHARED_MODE_MUTATIONS
    recording = recording_in_mode("prod", manage, preview=preview)
    assert rule not in {v.rule for v in run_pack(recording.resources)}
    fired = {v.rule for v in run_pack(mutations[rule](recording.resources))}
    assert rule in fired


@pytest.mark.parametrize("protected_stack", ["prod", "staging"])
def test_protected_stacks_keep_their_data_protected(protected_stack: str):
    recording = recording_for(protected_stack)
    protected = [
        r.name
        for r in recording.resources
        if r.type
        in (
            eodh_policies.BUCKET,
            eodh_policies.OIDC_PROVIDER,
            eodh_policies.NAMESPACE,
            eodh_policies.HELM_RELEASE,
        )
    ]
    assert protected, "no bucket or identity provider to protect"
    unprotected = [declared(r) for r in recording.resources]
    unprotected = [type(r)(**(vars(r) | {"protect": False})) for r in unprotected]
    fired = [v.resource for v in run_pack(unprotected) if v.rule == "protected-data"]
    assert sorted(fired) == sorted(protected)


def test_every_rule_has_a_mutation_or_is_config_driven():
    assert set(eodh_policies.RULES_BY_NAME) - set(MUTATIONS) == {"protected-data"}


def test_main_builds_a_mandatory_pack_of_every_rule(monkeypatch):
    import pulumi_policy

    built = {}

    def fake_pack(**kwargs):
        built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == "eodh-jupyterhub"
    assert built["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [r.name for r in eodh_policies.RULES]


def test_policy_project_file_uses_the_project_environment():
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    venv = (POLICY_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == POLICY_DIR.parent / ".venv"
