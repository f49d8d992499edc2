"""BTHome BLE driver, advert encoder and simulator."""

from .driver import MANIFEST, BTHomeDriver

__all__ = ["MANIFEST", "BTHomeDriver"]
