"""Loading drivers: a manifest is data, and its driver (with the protocol library) is imported on first need.

A driver package ships a light ``manifest.py`` whose :class:`Manifest` names the driver class in
``driver`` ("module:Class"). The hub registers a :class:`LazyDriver` for it: matching adverts reads
only the manifest; the driver module is imported the first time an advert matches (``identify``), an
adopted appliance starts (``connect``) or moves (``async_prove_identity``). A driver that fails to
import is reported once (``on_error``) and then claims nothing; its adopted appliances fail to start
with the import error, as a driver that cannot connect does.

On the event loop the hub loads with :meth:`LazyDriver.async_load` (through :func:`needs_loading` and
:func:`async_loaded`): the import runs in a worker thread, because a protocol library takes up to a second to
import and every client of the hub would wait that long. Python's import system is thread-safe (a lock per
module), so the loop may go on importing other modules meanwhile; callers that come while a load runs wait
for that one load. :meth:`LazyDriver.load` stays for callers off the loop (tools, tests).
"""

from __future__ import annotations

import asyncio
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

    __slots__ = ("_driver", "_loading", "_on_error", "load_error", "manifest")

    def __init__(self, manifest: Manifest, on_error: Callable[[str], None] | None = None) -> None:
        self.manifest = manifest
        self._on_error = on_error
        self._driver: Driver | None = None
        self._loading: asyncio.Future[None] | None = None  # the one import in a worker thread, while it runs
        self.load_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._driver is not None

    @property
    def settled(self) -> bool:
        """Loaded, or known not to load: using it imports nothing more."""
        return self._driver is not None or self.load_error is not None

    def load(self) -> Driver:
        """The real driver, imported now (on the calling thread) if it was not yet; raises ImportError (again) if
        it cannot be. On the event loop, await :meth:`async_load` instead."""
        if not self.settled:
            try:
                found = import_object(self.manifest.driver)
            except Exception as err:  # a missing protocol library must cost this driver only
                self._fail(err)
            else:
                self._accept(found)
        return self._result()

    async def async_load(self) -> Driver:
        """:meth:`load` with the import in a worker thread, so the event loop keeps turning while it runs. Every
        caller that comes meanwhile waits for the same import; one that is cancelled leaves it running."""
        if not self.settled:
            loading = self._loading
            if loading is None:
                loading = self._loading = asyncio.ensure_future(self._import_in_thread())
            await asyncio.shield(loading)
        return self._result()

    async def _import_in_thread(self) -> None:
        try:
            found = await asyncio.to_thread(import_object, self.manifest.driver)
        except Exception as err:
            self._fail(err)
        else:
            self._accept(found)  # instantiated on the loop: a driver's __init__ may touch loop-bound objects
        finally:
            self._loading = None

    def _accept(self, found: object) -> None:
        """Make what the manifest's ``driver`` names the driver, or record why it cannot be."""
        if self.settled:
            return  # a synchronous load() finished first; keep the one instance it made
        try:
            driver = as_driver(found)
            if driver.manifest.name != self.manifest.name:
                raise TypeError(f"{self.manifest.driver} is driver {driver.manifest.name!r}, "
                                f"not {self.manifest.name!r}")
        except Exception as err:
            self._fail(err)
            return
        self._driver = driver

    def _fail(self, err: Exception) -> None:
        if self.settled:
            return
        self.load_error = f"{type(err).__name__}: {err}"
        _LOGGER.error("Driver %s failed to load: %s", self.manifest.name, self.load_error)
        if self._on_error is not None:
            self._on_error(self.load_error)

    def _result(self) -> Driver:
        if self._driver is None:
            raise ImportError(self.load_error)
        return self._driver

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
        return await (await self.async_load()).async_prove_identity(context, adopted, claimed)

    def __repr__(self) -> str:
        return f"LazyDriver({self.manifest.name}, {'loaded' if self.loaded else 'not loaded'})"


def needs_loading(driver: Driver) -> bool:
    """Whether using ``driver`` would import its module first (a manifest whose driver is not loaded yet)."""
    return isinstance(driver, LazyDriver) and not driver.settled


async def async_loaded(driver: Driver) -> Driver:
    """``driver`` ready to use, its import (if one is due) run off the event loop; ImportError if it cannot load."""
    return await driver.async_load() if isinstance(driver, LazyDriver) else driver
