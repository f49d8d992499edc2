"""The driver manager: the ``drivers`` component, which loads the installed drivers.

Loading is all it adds to :class:`hub.appliances.Connections`, which matches adverts (through the
indexed matcher), adopts appliances (the one adoption path) and supervises their connections:
built-in drivers, drivers of installed packages (entry point group ``qilu_hub.drivers``) and
drivers passed in. A driver that fails to load is recorded in ``load_errors``; the hub starts anyway.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from hub.appliances.connections import (
    STORAGE_KIND,
    AdoptedDevice,
    Connections,
    Supervision,
    appliance_from_dict,
    appliance_to_dict,
)

from .base import Driver

_LOGGER = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qilu_hub.drivers"

# "module:attribute" of each driver shipped with the hub.
BUILTIN_DRIVERS = (
    "drivers.qoap.driver:QoapDriver",
    "drivers.shelly.driver:ShellyDriver",
    "drivers.wled.driver:WledDriver",
    "drivers.bthome.driver:BTHomeDriver",
    "drivers.xiaomi.driver:XiaomiDriver",
)


class DriverManager(Connections):
    """Hub component ``drivers``: :class:`~hub.appliances.Connections` over the installed drivers."""

    name = "drivers"

    def __init__(
        self,
        drivers: Iterable[Driver] | None = None,
        *,
        builtin: bool = True,
        entry_points_group: str | None = ENTRY_POINT_GROUP,
        **timing: float,
    ) -> None:
        super().__init__(timing=Supervision(**timing))  # start_timeout=, retry_initial=...
        self.load_errors: dict[str, str] = {}
        if builtin:
            for spec in BUILTIN_DRIVERS:
                self._load(spec, lambda spec=spec: _import(spec))
        if entry_points_group:
            for ep in entry_points(group=entry_points_group):
                self._load(f"entry point {ep.name}", ep.load)
        for driver in drivers or ():
            self.register(driver)

    # -- drivers ------------------------------------------------------------------------
    def _load(self, origin: str, loader: Any) -> None:
        try:
            obj = loader()
            driver = obj() if isinstance(obj, type) else obj
            if not isinstance(driver, Driver):
                raise TypeError(f"{obj!r} is not a Driver")
            self.register(driver)
        except Exception as err:  # a broken third-party package must not stop the hub
            self.load_errors[origin] = f"{type(err).__name__}: {err}"
            _LOGGER.error("Driver %s failed to load: %s", origin, self.load_errors[origin])


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


__all__ = ["BUILTIN_DRIVERS", "ENTRY_POINT_GROUP", "STORAGE_KIND", "AdoptedDevice", "DriverManager",
           "appliance_from_dict", "appliance_to_dict"]
