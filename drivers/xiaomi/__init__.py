"""Xiaomi BLE driver, advert encoder and simulator."""

from .driver import MANIFEST, XiaomiDriver

__all__ = ["MANIFEST", "XiaomiDriver"]
