"""WLED driver (on the wled library) and its simulator."""

from .driver import MANIFEST, WledDriver

__all__ = ["MANIFEST", "WledDriver"]
