"""The Qilu Open Appliance Profile: its generic driver, simulator and validators.

The package imports only its manifest: the driver module (and its protocol library) loads on first use.
"""

from .manifest import MANIFEST
from .profile import MDNS_TYPE, PROFILE_NAME, PROFILE_VERSION

__all__ = ["MANIFEST", "MDNS_TYPE", "PROFILE_NAME", "PROFILE_VERSION"]
