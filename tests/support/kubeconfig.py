"""A kubeconfig for code that builds a Kubernetes client but must never reach a cluster.

KubeSpawner builds its API client in `__init__` and fails without a kubeconfig; this one has
a `current-context` and a server nobody listens on (port 9, discard), so any call that
escapes a test's seam fails at once instead of reaching a real cluster.
"""

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster: {server: "https://127.0.0.1:9"}
contexts:
- name: unreachable
  context: {cluster: unreachable, user: nobody}
current-context: unreachable
users:
- name: nobody
  user: {token: not-a-real-token}
"""
