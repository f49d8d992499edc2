"""WLED driver (on the wled library) and its simulator.

The package imports only its manifest: the driver module (and its protocol library) loads on first use.
"""

from .manifest import MANIFEST

__all__ = ["MANIFEST"]
