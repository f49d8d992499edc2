"""The conformance kit: proves an appliance's firmware implements the Qilu Open Appliance Profile.

Run it with ``qilu-hub firmware-test --host H`` (IP) or ``--ble ADDRESS`` (BLE); see docs/appliance-profile.md.
"""

from .ble import BleConformanceKit
from .checks import plans_for
from .kit import ConformanceKit
from .results import CheckResult, Report

__all__ = ["BleConformanceKit", "CheckResult", "ConformanceKit", "Report", "plans_for"]
