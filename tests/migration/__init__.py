"""Adoption of a running ArgoCD deployment: import plan, Helm adoption, secrets, preflight."""
