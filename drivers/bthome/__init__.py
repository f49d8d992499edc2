"""BTHome BLE driver, advert encoder and simulator.

The package imports only its manifest: the driver module (and its protocol library) loads on first use.
"""

from .manifest import MANIFEST

__all__ = ["MANIFEST"]
