"""The one thing of the hub a driver's connection holds: :class:`DeviceContext`, a narrow view of one appliance.

A connection used to get the whole ``Hub`` and could reach every registry, the bus, the token
store and other components by name. What the built-in drivers actually do with it is small, and
that is all this class offers: find or create the appliance's entities and write their states,
add identifiers to its device, read its bind key, run tracked background tasks, connect over BLE
through the hub's connection slots, log, and keep files in a folder of its own.

This file is the only place the SDK touches ``Hub``: when the hub's internals move, only this
wrapper changes, never a driver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..appliances.availability import availability
from ..appliances.bind_keys import BindKey, BindKeys
from ..appliances.scanner import ble_device_lookup
from ..appliances.setup_codes import SetupCodes
from ..context import Context
from ..file_modes import PRIVATE_DIR
from ._helpers import spawn_tracked

if TYPE_CHECKING:
    from ..core import Hub
    from ..model import Entity

BLE_CONNECT_TIMEOUT = 10.0
DATA_FOLDER = "drivers"  # under the hub's config folder: one sub-folder per driver


class DeviceContext:
    """One adopted appliance's view of the hub, made by the hub for each connection it opens.

    Entities are this appliance's own: :meth:`set_state` and :meth:`state_value` accept only
    entities found or created through :meth:`entity` of this context.
    """

    __slots__ = ("_entity_ids", "_hub", "_origin", "_tasks", "appliance_key", "device_id", "driver", "logger")

    def __init__(self, hub: Hub, driver: str, device_id: str, appliance_key: str) -> None:
        self._hub = hub
        self.driver = driver
        self.device_id = device_id
        self.appliance_key = appliance_key
        self.logger = logging.getLogger(f"{__package__}.drivers.{driver}")
        self._origin = Context(f"driver.{driver}")
        self._entity_ids: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"DeviceContext({self.driver}:{self.appliance_key}, device {self.device_id})"

    # -- device, entities, states -----------------------------------------------------------
    def entity(self, unique_id: str, capabilities: Iterable[str], name: str, *, device_class: str | None = None,
               unit: str | None = None, entity_category: str | None = None) -> Entity:
        """Find or create an entity of this appliance (the same ``unique_id`` gives the same entity)."""
        entity = self._hub.entities.async_get_or_create(
            unique_id=unique_id, capabilities=capabilities, name=name, device_id=self.device_id,
            device_class=device_class, unit=unit, entity_category=entity_category)
        self._entity_ids.add(entity.entity_id)
        return entity

    def set_state(self, entity_id: str, value: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """Write the state of one of this appliance's entities (no event when nothing changed)."""
        if entity_id not in self._entity_ids:
            raise KeyError(f"{entity_id} is not an entity of {self.driver}:{self.appliance_key}")
        self._hub.states.async_set(entity_id, value, attributes if attributes is not None else {}, self._origin)

    def set_unavailable(self, entity_ids: Iterable[str]) -> None:
        """Mark this appliance's entities ``unavailable`` by the hub's one rule (attributes kept; the last good
        state restored if the appliance is back before the driver writes again)."""
        ids = list(entity_ids)
        foreign = [e for e in ids if e not in self._entity_ids]
        if foreign:
            raise KeyError(f"{foreign[0]} is not an entity of {self.driver}:{self.appliance_key}")
        availability(self._hub).mark_unavailable(ids, self._origin)

    def state_value(self, entity_id: str) -> Any:
        """The current state value of one of this appliance's entities, or None before its first state."""
        if entity_id not in self._entity_ids:
            raise KeyError(f"{entity_id} is not an entity of {self.driver}:{self.appliance_key}")
        state = self._hub.states.get(entity_id)
        return state.value if state is not None else None

    def update_device(self, *, name: str, identifiers: Iterable[tuple[str, str]] = (),
                      connections: Iterable[tuple[str, str]] = (), manufacturer: str | None = None,
                      model: str | None = None, sw_version: str | None = None) -> None:
        """Add what the connection learnt to the appliance's device: an identifier known only after connecting
        (so the same appliance seen over another radio merges into this device), its firmware version.
        ``identifiers``/``connections`` must include one the device already has."""
        self._hub.devices.async_get_or_create(
            source=self.driver, name=name, identifiers=identifiers, connections=connections,
            manufacturer=manufacturer, model=model, sw_version=sw_version, driver=self.driver)

    # -- secrets and files ------------------------------------------------------------------
    def bind_key(self) -> BindKey | None:
        """The household's bind key for this appliance (encrypted BLE sensors), or None."""
        return BindKeys(self._hub.storage).get(self.driver, self.appliance_key)

    def setup_code(self) -> str | None:
        """The setup code the household gave to commission this appliance (Matter), or None."""
        return SetupCodes(self._hub.storage).get(self.driver, self.appliance_key)

    def forget_setup_code(self) -> None:
        """Delete the setup code once it has served (the appliance is commissioned): a secret is kept only as
        long as it is used."""
        SetupCodes(self._hub.storage).delete(self.driver, self.appliance_key)

    def companion(self, name: str) -> Any:
        """The hub's component ``name`` that a driver works through (``"matter"``: the matter-server client),
        or None when the hub runs without it (then say so in the error that stops the connection)."""
        return self._hub.components.get(name)

    def data_dir(self) -> Path:
        """A private folder for this driver's own files (created on first use), kept across restarts."""
        path = self._hub.config_dir / DATA_FOLDER / self.driver
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        return path

    # -- tasks ------------------------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this context tracks until it ends; :meth:`async_cancel_tasks` ends the rest."""
        return spawn_tracked(self._tasks, coro, name)

    async def async_cancel_tasks(self) -> None:
        """Cancel every task still running from :meth:`spawn` and wait for them (call it in ``async_stop``)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- BLE --------------------------------------------------------------------------------
    async def async_connect_ble(self, address: str, name: str,
                                disconnected_callback: Callable[[Any], None]) -> Any:
        """A connected ``BleakClient`` for ``address``, with the device the scanner already heard and through the
        hub's cap on simultaneous connection attempts. ConnectionError when the scanner has not heard it yet."""
        lookup = ble_device_lookup(self._hub)
        if lookup is None:
            from bleak import BleakClient  # only BLE drivers pay for bleak

            # No scanner in this hub: let bleak find the address itself (slower; it scans first).
            client = BleakClient(address, disconnected_callback=disconnected_callback, timeout=BLE_CONNECT_TIMEOUT)
            await client.connect()
            return client
        ble_device = lookup(address)
        if ble_device is None:
            raise ConnectionError(f"{address} has not been heard by the scanner yet")
        from ..discovery.connect import async_connect

        return await async_connect(ble_device, name, disconnected_callback=disconnected_callback)
