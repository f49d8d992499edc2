"""The conformance kit: proves an appliance's firmware implements the Qilu Open Appliance Profile.

Run it with ``qilu-hub firmware-test --host H``; see docs/appliance-profile.md.
"""

from .kit import ConformanceKit, plans_for
from .results import CheckResult, Report

__all__ = ["CheckResult", "ConformanceKit", "Report", "plans_for"]
