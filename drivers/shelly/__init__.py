"""Shelly Gen2+ driver (on aioshelly) and its simulator."""

from .driver import MANIFEST, ShellyDriver

__all__ = ["MANIFEST", "ShellyDriver"]
