"""The driver manager: the ``drivers`` component, which loads the installed drivers.

Loading is all it adds to :class:`qilu_hub.appliances.Connections`, which matches adverts (through the
indexed matcher), adopts appliances (the one adoption path) and supervises their connections:
built-in drivers (as manifests, whose driver modules are imported on first match), drivers of
installed packages (entry point group ``qilu_hub.drivers``) and drivers passed in. A driver that fails
to load is recorded in ``load_errors``; the hub starts anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from qilu_hub.appliances.connections import (
    STORAGE_KIND,
    AdoptedDevice,
    Connections,
    Supervision,
    appliance_from_dict,
    appliance_to_dict,
)
from qilu_hub.sdk import Driver
from qilu_hub.sdk._loading import as_driver, import_object

from . import BUILTIN_MANIFESTS

_LOGGER = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qilu_hub.drivers"

# "module:attribute" of each driver shipped with the hub: manifests, whose drivers load on first match.
BUILTIN_DRIVERS = BUILTIN_MANIFESTS


class DriverManager(Connections):
    """Hub component ``drivers``: :class:`~qilu_hub.appliances.Connections` over the installed drivers."""

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
                self._load(spec, lambda spec=spec: import_object(spec))
        if entry_points_group:
            for ep in entry_points(group=entry_points_group):
                self._load(f"entry point {ep.name}", ep.load)
        for driver in drivers or ():
            self.register(driver)

    # -- drivers ------------------------------------------------------------------------
    def _load(self, origin: str, loader: Any) -> None:
        """Register what ``loader`` returns: a manifest (its driver is imported on first use), a driver class or
        instance. What fails, now or at that first use, is kept in ``load_errors`` under ``origin``."""
        try:
            self.register(as_driver(loader(), on_error=lambda error: self.load_errors.__setitem__(origin, error)))
        except Exception as err:  # a broken third-party package must not stop the hub
            self.load_errors[origin] = f"{type(err).__name__}: {err}"
            _LOGGER.error("Driver %s failed to load: %s", origin, self.load_errors[origin])


__all__ = ["BUILTIN_DRIVERS", "ENTRY_POINT_GROUP", "STORAGE_KIND", "AdoptedDevice", "DriverManager",
           "appliance_from_dict", "appliance_to_dict"]
