"""Labels every Kubernetes object of this program carries, so `kubectl get -l` finds them."""

PART_OF = "eodh-jupyterhub"


def standard_labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "pulumi",
    }
