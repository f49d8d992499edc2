"""The conformance kit: proves an appliance's firmware implements the Qilu Open Appliance Profile.

Run it with ``qilu-hub firmware-test --host H``; see docs/appliance-profile.md.
"""

from .checks import plans_for
from .kit import ConformanceKit
from .results import CheckResult, Report

__all__ = ["CheckResult", "ConformanceKit", "Report", "plans_for"]
