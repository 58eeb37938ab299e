"""Entry point for `pulumi preview` / `pulumi up`: settings first, so bad config touches nothing."""

from eodh_jupyterhub.program import jupyterhub_program
from eodh_jupyterhub.settings import settings_from_pulumi

jupyterhub_program(settings_from_pulumi())
