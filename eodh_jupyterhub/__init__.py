"""The eodh-jupyterhub Pulumi program: settings, components and the program that wires them."""
