"""Entry point of the policy pack: `pulumi preview --policy-pack policy`.

The rules live in `eodh_policies.py` beside this file, as pure functions the test suite also
runs over every stack's recorded resources (tests/policy), so CI enforces them without the CLI.
"""

import sys
from pathlib import Path

# The analyzer runs this file from the pack folder; make its sibling module importable
# however the interpreter was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eodh_policies import PACK_NAME, policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
