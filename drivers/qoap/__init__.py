"""The Qilu Open Appliance Profile: its generic driver, simulator and validators."""

from .driver import MANIFEST, QoapDriver
from .profile import MDNS_TYPE, PROFILE_NAME, PROFILE_VERSION

__all__ = ["MANIFEST", "MDNS_TYPE", "PROFILE_NAME", "PROFILE_VERSION", "QoapDriver"]
