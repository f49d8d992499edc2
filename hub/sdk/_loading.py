"""Loading drivers: a manifest is data, and its driver (with the protocol library) is imported on first need.

A driver package ships a light ``manifest.py`` whose :class:`Manifest` names the driver class in
``driver`` ("module:Class"). The hub registers a :class:`LazyDriver` for it: matching adverts reads
only the manifest; the driver module is imported the first time an advert matches (``identify``), an
adopted appliance starts (``connect``) or moves (``async_prove_identity``). A driver that fails to
import is reported once (``on_error``) and then claims nothing; its adopted appliances fail to start
with the import error, as a driver that cannot connect does.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._driver import DeviceConnection, DiscoveredAppliance, Driver, Manifest

if TYPE_CHECKING:
    from ..discovery.models import DiscoveryInfo
    from ._context import DeviceContext

_LOGGER = logging.getLogger(__name__)


def import_object(spec: str) -> Any:
    """The object ``"package.module:attribute"`` names."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"{spec!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), attr)


def as_driver(obj: Any, on_error: Callable[[str], None] | None = None) -> Driver:
    """A driver from what a package offers: a :class:`Manifest` naming its driver (loaded lazily), a
    :class:`Driver` subclass or an instance. TypeError for anything else."""
    if isinstance(obj, Manifest):
        if not obj.driver:
            raise TypeError(f"manifest {obj.name!r} names no driver ('module:Class')")
        return LazyDriver(obj, on_error)
    driver = obj() if isinstance(obj, type) else obj
    if not isinstance(driver, Driver):
        raise TypeError(f"{obj!r} is not a Driver")
    return driver


class LazyDriver(Driver):
    """Stands for the driver its manifest names until that driver is needed; then delegates to it."""

    __slots__ = ("_driver", "_on_error", "load_error", "manifest")

    def __init__(self, manifest: Manifest, on_error: Callable[[str], None] | None = None) -> None:
        self.manifest = manifest
        self._on_error = on_error
        self._driver: Driver | None = None
        self.load_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._driver is not None

    def load(self) -> Driver:
        """The real driver, imported now if it was not yet; raises ImportError (again) if it cannot be."""
        if self._driver is not None:
            return self._driver
        if self.load_error is not None:
            raise ImportError(self.load_error)
        try:
            driver = as_driver(import_object(self.manifest.driver))
            if driver.manifest.name != self.manifest.name:
                raise TypeError(f"{self.manifest.driver} is driver {driver.manifest.name!r}, "
                                f"not {self.manifest.name!r}")
        except Exception as err:  # a missing protocol library must cost this driver only
            self.load_error = f"{type(err).__name__}: {err}"
            _LOGGER.error("Driver %s failed to load: %s", self.manifest.name, self.load_error)
            if self._on_error is not None:
                self._on_error(self.load_error)
            raise ImportError(self.load_error) from err
        self._driver = driver
        return driver

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        try:
            driver = self.load()
        except ImportError:
            return None  # reported once when loading failed; not again for every advert
        return driver.identify(info)

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return self.load().connect(context, appliance)

    async def async_prove_identity(self, context: DeviceContext, adopted: DiscoveredAppliance,
                                   claimed: DiscoveredAppliance) -> tuple[bool, str]:
        return await self.load().async_prove_identity(context, adopted, claimed)

    def __repr__(self) -> str:
        return f"LazyDriver({self.manifest.name}, {'loaded' if self.loaded else 'not loaded'})"
