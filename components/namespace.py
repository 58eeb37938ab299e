"""The `jupyter` namespace, meshed by Linkerd so hub, proxy and notebooks talk over mTLS."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .labels import standard_labels


@dataclass(frozen=True)
class JupyterNamespaceArgs:
    name: str = "jupyter"
    linkerd_inject: bool = True
    protect: bool = True
    """Protect and retain the namespace: deleting it deletes every claim in it, the hub
    database's included (Helm's `resource-policy: keep` guards only a Helm uninstall)."""

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 63:
            raise ValueError(f"namespace name must be 1-63 characters, got {self.name!r}")


class JupyterNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: JupyterNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:kubernetes:JupyterNamespace", name, None, opts)
        annotations = {"linkerd.io/inject": "enabled" if args.linkerd_inject else "disabled"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                # A fixed name: the chart, RBAC binding and ingress all refer to it by name.
                name=args.name,
                labels=standard_labels("namespace"),
                annotations=annotations,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        self.name = namespace.metadata.apply(lambda m: m.name or args.name)
        self.register_outputs({"name": self.name})
