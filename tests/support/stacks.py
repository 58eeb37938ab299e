"""Stack discovery and configuration for tests (the same loader `make render` uses)."""

from eodh_jupyterhub.stack_config import (  # noqa: F401 - re-exported for tests
    effective_config,
    project_defaults,
    pulumi_config,
    stack_names,
    stack_values,
)
