"""The appliance lifecycle: sightings → matching → inbox → adoption → connection → availability → removal.

Every advert a source reports (mDNS and BLE from :mod:`qilu_hub.discovery`; Matter next) walks one
straight line down this package: :meth:`ApplianceLifecycle.handle` asks the catalog's indexed matcher
(:class:`~qilu_hub.appliances.matching.MatcherIndex`) which drivers want it,
:func:`~qilu_hub.appliances.matching.identify`
turns it into an appliance with a stable key, the key's inbox entry (:mod:`qilu_hub.appliances.inbox`) decides
what happens: pending (maybe auto-adopted), adopted (the connection hears of the new sighting, or is
started again after a restart), or ignored (nothing). Adoption goes to the catalog
(:class:`~qilu_hub.appliances.connections.Connections`, through :func:`~qilu_hub.appliances.adoption.adopt_appliance`),
is gated by the bind key (:func:`~qilu_hub.appliances.bind_keys.require_bind_key`) and, if it fails, is retried
with backoff while the appliance is on the network. An adopted device whose every sighting is gone
(mDNS goodbye or expiry, BLE timeout) is marked unavailable by the one writer of availability
(:mod:`qilu_hub.appliances.availability`) until it is seen again. Ignoring an adopted appliance removes it.

An advert proves nothing: anyone on the LAN can announce any key. So an adopted appliance
keeps the connection data it was adopted with; a sighting of its key at another address is
a *claimed move*: logged at WARNING (rate-limited), shown on the entry ("address change,
confirm", both addresses), never passed to the connection, and followed only when the
household confirms it (:meth:`ApplianceLifecycle.async_confirm_move`) or when the appliance at
the new address proves it is the adopted one (the catalog's ``async_prove_move``; the QOAP
driver checks a signature with the key it pinned at adoption). Pending entries are capped per
advertised address and overall; the least recently seen are dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from qilu_hub.bus import EventType
from qilu_hub.context import Context
from qilu_hub.discovery.models import BleInfo, DiscoveryInfo, MdnsInfo
from qilu_hub.discovery.parse import ParseStats
from qilu_hub.discovery.settings import DiscoverySettings
from qilu_hub.log_limit import LogLimiter
from qilu_hub.sdk._loading import async_loaded, needs_loading

from .availability import availability, device_entity_ids
from .bind_keys import BindKey, BindKeys, missing_bind_key, needs_bind_key, require_bind_key
from .catalog import DriverCatalog
from .inbox import EntryState, Inbox, InboxEntry, endpoint_changed, where
from .matching import identify, mdns_type
from .scanner import offer_ble_lookup
from .setup_codes import SetupCodeRequired, SetupCodes, check_setup_code, needs_setup_code
from .sightings import Sightings

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from zeroconf.asyncio import AsyncZeroconf

    from qilu_hub.core import Hub
    from qilu_hub.discovery.ble import BleSource
    from qilu_hub.discovery.mdns import MdnsSource
    from qilu_hub.sdk import Driver

    from .appliance import DiscoveredAppliance

_LOGGER = logging.getLogger(__name__)

EVENT_DISCOVERY_INBOX_UPDATED: EventType[dict[str, Any]] = EventType("discovery_inbox_updated")
EVENT_DEVICE_AVAILABILITY: EventType[dict[str, Any]] = EventType("device_availability")

ADOPT_BACKOFF_START = 1.0
ADOPT_BACKOFF_MAX = 60.0
# A claimed move whose proof failed is tried again when it is seen again, but not more often than this
# (an appliance that just moved may not answer yet; an impostor must not make the hub a challenge pump).
MOVE_RETRY_INTERVAL = 30.0
MOVE_PROOF_TIMEOUT = 10.0
# Sightings whose adverts wait for a driver to load (under a second); a flood of new ones meanwhile is dropped
# beyond this (counted), as the inbox caps pending entries: a real appliance advertises again.
MAX_WAITING_FOR_LOAD = 1024


class AdoptError(Exception):
    """Adoption failed now; it is retried in the background while the appliance is online."""


class ApplianceLifecycle:
    """The ``discovery`` component (its config section and API name). ``catalog`` is a :class:`DriverCatalog`,
    a component name to look up, or a factory of one (then this component owns and stops it)."""

    name = "discovery"
    # How often the database is checked for inbox decisions and bind keys written by another process
    # (``qilu-hub inbox adopt KEY [--bind-key -]`` while the hub runs).
    external_check_interval = 2.0

    def __init__(
        self,
        catalog: DriverCatalog | str | Callable[[Hub], DriverCatalog] = "drivers",
        *,
        settings: DiscoverySettings | None = None,
        zeroconf: AsyncZeroconf | None = None,
        **overrides: Any,
    ) -> None:
        self._catalog_spec = catalog
        self._settings = settings
        self._overrides = overrides  # e.g. mdns_interfaces=["127.0.0.1"], ble_enabled=False (for demo)
        self._zeroconf = zeroconf
        self.hub: Hub | None = None
        self.catalog: DriverCatalog | None = None
        self.settings = settings or DiscoverySettings()
        self.inbox: Inbox | None = None
        self.mdns: MdnsSource | None = None
        self.ble: BleSource | None = None
        self.stats = ParseStats()
        self._auto: dict[str, bool] = {}
        self._adopting: dict[str, asyncio.Task[None]] = {}
        self._live: set[str] = set()  # adopted keys whose connection runs in this process
        self.sightings = Sightings()
        self._offline_devices: set[str] = set()
        self._fast: dict[str, tuple[list[Any], list[InboxEntry]]] = {}  # BLE sighting -> (drivers, adopted entries)
        self._context = Context("discovery")
        self.adopt_failures = 0
        self._owns_catalog = False
        self._watcher: asyncio.Task[None] | None = None
        self._data_version = 0
        self._started_with: dict[str, BindKey | None] = {}  # live key -> the bind key its connection uses
        # key -> (the advert, its sighting, the appliance it claims) of a claimed move, to follow it at once
        self._claims: dict[str, tuple[DiscoveryInfo, str, DiscoveredAppliance]] = {}
        self._proving: dict[str, asyncio.Task[None]] = {}
        self._proved_at: dict[str, float] = {}  # key -> loop time of the last proof attempt
        self.moves_followed = 0
        self.evicted = 0
        self._move_log = LogLimiter(interval=60.0, max_per_interval=20)
        self._evict_log = LogLimiter(interval=60.0, max_per_interval=1)
        # Adverts matched by a driver whose module is being imported (off the loop): the newest advert of each
        # sighting, handled again once the load ends; one load task per driver, whatever the number of adverts.
        self._waiting_for_load: dict[str, DiscoveryInfo] = {}
        self._loads: dict[str, tuple[asyncio.Task[None], set[str]]] = {}

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self.hub = hub
        offer_ble_lookup(hub, self.ble_device)  # what connections ask of the scanner, without naming this component
        if self._settings is None:
            self.settings = DiscoverySettings.from_config(hub.config.get("discovery"))
        for key, value in self._overrides.items():
            if not hasattr(self.settings, key):
                raise TypeError(f"unknown discovery setting {key!r}")
            setattr(self.settings, key, value)
        self.catalog = self._resolve_catalog(hub)
        self.inbox = Inbox(hub.storage)
        manifests = list(self.catalog.manifests())
        self._auto = {m.name: self.settings.auto_adopt.get(m.name, m.auto_adopt) for m in manifests}
        mdns_types = sorted({mdns_type(m.type) for manifest in manifests for m in manifest.mdns})
        has_ble = any(manifest.ble for manifest in manifests)
        if self.settings.mdns_enabled and mdns_types:
            from qilu_hub.discovery.mdns import MdnsSource

            self.mdns = MdnsSource(mdns_types, self._on_mdns, self._on_mdns_removed,
                                   interfaces=self.settings.mdns_interfaces or None, zeroconf=self._zeroconf,
                                   stats=self.stats, ipv6=self.settings.mdns_ipv6)
            await self.mdns.async_start()
        if self.settings.ble_enabled and has_ble:
            from qilu_hub.discovery.ble import BleSource
            from qilu_hub.discovery.connect import set_max_connections

            set_max_connections(self.settings.ble_max_connections)
            self.ble = BleSource(self._on_ble, self._on_ble_lost, adapters=self.settings.ble_adapters or None,
                                 scanning_mode=self.settings.ble_scanning_mode,  # type: ignore[arg-type]
                                 timeout=self.settings.ble_timeout, watchdog=self.settings.ble_watchdog,
                                 stats=self.stats)
            await self.ble.async_start()
        self._data_version = hub.storage.data_version()
        self._watcher = asyncio.get_running_loop().create_task(self._watch_external(), name="discovery-external")
        for entry in self.inbox.entries(EntryState.ADOPTED):
            if entry.move is not None and entry.move.get("confirmed"):
                # Confirmed with `qilu-hub inbox confirm-move` while the hub was stopped.
                self._spawn_follow(entry.key, "confirmed while the hub was stopped")
        _LOGGER.info("Discovery started: %d mDNS types, BLE %s, %d inbox entries", len(mdns_types),
                     "on" if self.ble else "off", len(self.inbox))

    async def async_stop(self) -> None:
        if self.hub is not None:
            offer_ble_lookup(self.hub, None)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        loads = [task for task, _ in self._loads.values()]
        for task in [*self._adopting.values(), *self._proving.values(), *loads]:
            task.cancel()  # a load's import goes on in its thread; only waiting for it stops
        if self._adopting or self._proving or loads:
            await asyncio.gather(*self._adopting.values(), *self._proving.values(), *loads, return_exceptions=True)
        self._adopting.clear()
        self._proving.clear()
        self._loads.clear()
        self._waiting_for_load.clear()
        if self.mdns is not None:
            await self.mdns.async_stop()
            self.mdns = None
        if self.ble is not None:
            await self.ble.async_stop()
            self.ble = None
        stop = getattr(self.catalog, "async_stop", None)
        if self._owns_catalog and stop is not None:
            await stop()  # a catalog made for this component (a factory) is this component's to stop
        self._live.clear()

    def _resolve_catalog(self, hub: Hub) -> DriverCatalog:
        spec = self._catalog_spec
        if isinstance(spec, str):
            component = hub.components.get(spec)
            if component is None:
                # Discovery without drivers finds nothing to adopt, but must not keep the hub from starting.
                _LOGGER.error("No %r component (the driver catalog): discovery runs with no drivers", spec)
                from .catalog import StaticCatalog

                return StaticCatalog(hub, [])
            spec = component  # type: ignore[assignment]
        elif callable(spec) and not isinstance(spec, DriverCatalog):
            spec = spec(hub)
            self._owns_catalog = True
        if not isinstance(spec, DriverCatalog):
            raise TypeError(f"{spec!r} does not provide the DriverCatalog protocol")
        return spec

    # -- the API-facing protocol --------------------------------------------------------
    def inbox_entries(self) -> list[dict[str, Any]]:
        """Every entry (pending, adopted, ignored) as JSON-ready dicts, oldest first."""
        assert self.inbox is not None
        return [self._entry_dict(entry) for entry in self.inbox.entries()]

    def _entry_dict(self, entry: InboxEntry) -> dict[str, Any]:
        data = entry.to_dict()
        data["online"] = self.is_online(entry.key)
        data["auto_adopt"] = self._auto.get(entry.driver, False)
        # Whether a key is stored, never the key: this list goes to the API, the dashboard and the CLI.
        data["bind_key_set"] = self._bind_keys().has(entry.driver, entry.key)
        data["problem"] = self.problem(entry)
        # Only the addresses and what the proof said; the claimed connection data stays inside the hub.
        move = entry.move
        data["move"] = None if move is None else {k: move.get(k) for k in ("from", "to", "proof", "first_seen",
                                                                              "last_seen")}
        data.pop("pinned", None)
        return data

    def problem(self, entry: InboxEntry) -> str | None:
        """``needs_bind_key`` (encrypted, no key yet), ``address_change`` (a claimed move waits for confirmation),
        or what the adopted appliance's connection reports."""
        if missing_bind_key(self._bind_keys(), entry.driver, entry.key, entry.data):
            return "needs_bind_key"
        if self._missing_setup_code(entry):
            return "needs_setup_code"
        if entry.state is EntryState.ADOPTED and entry.move is not None:
            return "address_change"
        report = getattr(self.catalog, "problem", None)
        if entry.state is EntryState.ADOPTED and entry.key in self._live and callable(report):
            try:
                problem = report(entry.key)
            except Exception:
                _LOGGER.exception("Asking the catalog about %s failed", entry.key)
                return None
            return problem if isinstance(problem, str) else None
        return None

    def _bind_keys(self) -> BindKeys:
        assert self.hub is not None
        return BindKeys(self.hub.storage)

    def _missing_setup_code(self, entry: InboxEntry) -> bool:
        assert self.hub is not None
        return (entry.state is not EntryState.ADOPTED or entry.key not in self._live) and needs_setup_code(
            entry.data) and SetupCodes(self.hub.storage).get(entry.driver, entry.key) is None and not entry.pinned

    async def async_adopt(self, key: str, bind_key: str | BindKey | None = None, *,
                          setup_code: str | None = None) -> str:
        """Adopt now; returns the device id. KeyError if unknown; AdoptError if the driver failed (retried).

        An appliance adopted by commissioning it (Matter) needs ``setup_code`` (its QR payload or manual code)
        unless one is stored: ``SetupCodeRequired`` or a ValueError naming what is wrong with the code otherwise.

        An encrypted appliance needs ``bind_key`` (32 hex digits) unless one is stored: ``BindKeyRequired``,
        ``BindKeyError`` (both ValueErrors) otherwise. A new key for an adopted appliance restarts its connection.
        """
        entry = self._entry(key)
        assert self.hub is not None
        if setup_code is not None:
            SetupCodes(self.hub.storage).set(entry.driver, key, check_setup_code(entry.data, setup_code, entry.title))
        elif self._missing_setup_code(entry):
            raise SetupCodeRequired(f"{entry.title} is adopted by commissioning it: give its setup code "
                                    "(the QR payload MT:... or the manual code on its label)")
        keys = self._bind_keys()
        if bind_key is not None:
            parsed = bind_key if isinstance(bind_key, BindKey) else BindKey.parse(bind_key)
            changed = keys.get(entry.driver, key) != parsed
            keys.set(entry.driver, key, parsed)
            if changed and key in self._live:
                # The running connection decrypts with the old key: start it again with the new one.
                self._live.discard(key)
                assert self.catalog is not None
                await self.catalog.async_unload(key)
        else:
            require_bind_key(keys, entry.driver, key, entry.data, entry.title)
        if entry.state is EntryState.ADOPTED and key in self._live and entry.device_id:
            return entry.device_id
        self.inbox.set_state(key, EntryState.ADOPTED)  # type: ignore[union-attr]
        self._fire_inbox("adopt", entry)
        task = self._adopting.get(key)
        if task is not None:
            task.cancel()
        try:
            return await self._adopt_once(entry)
        except Exception as err:
            self._schedule_adopt(entry)
            raise AdoptError(f"{entry.title}: {type(err).__name__}: {err}") from err

    async def async_ignore(self, key: str) -> None:
        """Ignore for good (survives restarts, address changes, renames); stops a running connection."""
        entry = self._entry(key)
        task = self._adopting.pop(key, None)
        if task is not None:
            task.cancel()
        self.inbox.set_state(key, EntryState.IGNORED)  # type: ignore[union-attr]
        if key in self._live:
            self._live.discard(key)
            assert self.catalog is not None
            await self.catalog.async_unload(key)
        self._bind_keys().delete(entry.driver, key)  # a secret is kept only as long as it is used
        self._fire_inbox("ignore", entry)

    async def async_unignore(self, key: str) -> None:
        """Back to pending (auto-adopted again if the driver's policy says so and it is online)."""
        entry = self._entry(key)
        self.inbox.set_state(key, EntryState.PENDING)  # type: ignore[union-attr]
        self._fire_inbox("unignore", entry)
        if self._auto.get(entry.driver) and self.is_online(key):
            self._schedule_adopt(entry)

    async def async_confirm_move(self, key: str) -> dict[str, Any]:
        """Follow an adopted appliance's claimed move (the household says it really moved). KeyError if the
        key is unknown; ValueError if it has no move waiting. Returns the entry as :meth:`inbox_entries` does."""
        entry = self._entry(key)
        if entry.state is not EntryState.ADOPTED or entry.move is None:
            raise ValueError(f"{entry.title} has no address change waiting for confirmation")
        await self._follow(entry, "confirmed")
        return self._entry_dict(entry)

    async def async_reject_move(self, key: str) -> dict[str, Any]:
        """Forget an adopted appliance's claimed move (the household says it did not move); it is shown again
        if the claim is made again. KeyError / ValueError as :meth:`async_confirm_move`."""
        entry = self._entry(key)
        if entry.state is not EntryState.ADOPTED or entry.move is None:
            raise ValueError(f"{entry.title} has no address change waiting for confirmation")
        _LOGGER.info("%s (%s): the claimed move to %s was rejected", entry.title, key, entry.move.get("to"))
        self._drop_claim(entry)
        self._fire_inbox("move_rejected", entry)
        return self._entry_dict(entry)

    # -- decisions made by another process -------------------------------------------------
    async def _watch_external(self) -> None:
        while True:
            await asyncio.sleep(self.external_check_interval)
            try:
                await self.async_apply_external_changes()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad record must not end the watch, nor discovery
                _LOGGER.exception("Applying inbox changes made outside the hub failed")

    async def async_apply_external_changes(self) -> None:
        """Act on what another process wrote to the inbox or the bind keys since the last look, as if it
        had come through the API: adopt, ignore, un-ignore, restart a connection whose key changed."""
        assert self.hub is not None and self.inbox is not None
        version = self.hub.storage.data_version()
        if version == self._data_version:
            return
        self._data_version = version
        for entry, state in self.inbox.external_changes():
            _LOGGER.info("%s (%s) was set to %s outside the hub", entry.title, entry.key, state)
            try:
                if state is EntryState.ADOPTED:
                    await self.async_adopt(entry.key)
                elif state is EntryState.IGNORED:
                    await self.async_ignore(entry.key)
                else:
                    await self.async_unignore(entry.key)
            except (AdoptError, ValueError) as err:  # retried in the background, or waits for a bind key
                _LOGGER.warning("Adopting %s (%s): %s", entry.title, entry.key, err)
        for entry, confirmed in self.inbox.external_move_decisions():
            if entry.state is not EntryState.ADOPTED:
                continue
            _LOGGER.info("The move of %s (%s) to %s was %s outside the hub", entry.title, entry.key,
                         (entry.move or {}).get("to"), "confirmed" if confirmed else "rejected")
            if confirmed:
                await self._follow(entry, "confirmed")
            else:
                self._drop_claim(entry)
                self._fire_inbox("move_rejected", entry)
        keys = self._bind_keys()
        for key in [k for k in self._live if k in self._started_with]:
            live = self.inbox.get(key)
            # Only encrypted appliances use a key; reading one per plain appliance would be wasted I/O.
            if live is None or not needs_bind_key(live.data):
                continue
            if keys.get(live.driver, key) != self._started_with[key]:
                _LOGGER.info("The bind key of %s (%s) changed outside the hub: reconnecting", live.title, key)
                self._live.discard(key)
                assert self.catalog is not None
                await self.catalog.async_unload(key)
                self._schedule_adopt(live)

    def _entry(self, key: str) -> InboxEntry:
        assert self.inbox is not None
        entry = self.inbox.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    # -- queries ------------------------------------------------------------------------
    def is_online(self, key: str) -> bool:
        return self.sightings.online(key)

    def ble_device(self, address: str) -> BLEDevice | None:
        return self.ble.ble_device(address) if self.ble is not None else None

    def status(self) -> dict[str, Any]:
        assert self.inbox is not None
        return {
            "inbox": {s.value: len(self.inbox.entries(s)) for s in EntryState},
            "mdns": None if self.mdns is None else {
                "types": self.mdns.types, "services": len(self.mdns.services),
                "resolve_retries": self.mdns.resolve_retries, "resolve_failures": self.mdns.resolve_failures},
            "ble": None if self.ble is None else self.ble.status(),
            "dropped": dict(self.stats), "adopt_failures": self.adopt_failures,
        }

    # -- sources ------------------------------------------------------------------------
    def _on_mdns(self, info: MdnsInfo) -> None:
        self.handle(info, f"mdns:{info.name}")

    def _on_mdns_removed(self, _type: str, name: str) -> None:
        self.sighting_gone(f"mdns:{name}")

    def _on_ble(self, info: BleInfo) -> None:
        self.handle(info, f"ble:{info.address}")

    def _on_ble_lost(self, address: str) -> None:
        self.sighting_gone(f"ble:{address}")

    def handle(self, info: DiscoveryInfo, sighting: str) -> None:
        """One new or changed advert: match, identify, and act on each appliance. Never raises."""
        assert self.catalog is not None
        try:
            drivers = self.catalog.match(info)
        except Exception:
            self.stats["match_error"] += 1
            _LOGGER.exception("Matching %s failed", sighting)
            return
        if not drivers:
            self.stats["unmatched"] += 1
            return
        fast = self._fast.get(sighting)
        if fast is not None and fast[0] == drivers:
            # A BLE sensor of an adopted device: the same drivers map this address to the same keys, so
            # skip identify and go straight to the connections (tens of thousands of adverts a second).
            for entry in fast[1]:
                entry.last_seen = info.time
                self.sightings.note(entry.key, info)
                self.catalog.discovery_updated(entry.key, info)
            return
        loading = [driver for driver in drivers if needs_loading(driver)]
        if loading:
            self._wait_for_load(loading, info, sighting)
            return
        entries: list[InboxEntry] = []
        for driver in drivers:
            appliance = identify(driver, info, self.stats)
            if appliance is None:
                continue
            handled = self._appliance(driver.manifest.name, appliance, info, sighting)
            if handled is not None:
                entries.append(handled)
        if (isinstance(info, BleInfo) and entries and len(entries) == len(drivers)
                and all(e.state is EntryState.ADOPTED and e.key in self._live for e in entries)):
            self._fast[sighting] = (list(drivers), entries)

    def _wait_for_load(self, drivers: list[Driver], info: DiscoveryInfo, sighting: str) -> None:
        """Handle the advert once ``drivers`` are loaded: their imports run off the loop, one per driver."""
        if sighting not in self._waiting_for_load and len(self._waiting_for_load) >= MAX_WAITING_FOR_LOAD:
            self.stats["load_wait_dropped"] += 1
            return
        self._waiting_for_load[sighting] = info  # a newer advert of the sighting replaces the one waiting
        for driver in drivers:
            name = driver.manifest.name
            load = self._loads.get(name)
            if load is None:
                task = asyncio.get_running_loop().create_task(self._load(driver), name=f"load-driver-{name}")
                load = self._loads[name] = (task, set())
            load[1].add(sighting)

    async def _load(self, driver: Driver) -> None:
        name = driver.manifest.name
        with contextlib.suppress(ImportError):  # reported once by the driver (the driver manager's load_errors)
            await async_loaded(driver)
        _, sightings = self._loads.pop(name, (None, set()))
        for sighting in sightings:
            info = self._waiting_for_load.pop(sighting, None)
            if info is not None:  # not gone meanwhile; waits again if another of its drivers still loads
                self.handle(info, sighting)

    async def async_wait_for_loads(self) -> None:
        """Return once no advert waits for a driver to load, each one that waited handled (tests, benchmarks)."""
        while self._loads:  # handling a waiting advert may start the load of another driver it matches
            await asyncio.gather(*(task for task, _ in list(self._loads.values())), return_exceptions=True)

    def _appliance(self, driver: str, appliance: DiscoveredAppliance, info: DiscoveryInfo,
                   sighting: str) -> InboxEntry | None:
        assert self.inbox is not None and self.catalog is not None
        key = appliance.key
        address = info.host if isinstance(info, MdnsInfo) else info.address
        known = self.inbox.get(key)
        if (known is not None and known.state is EntryState.ADOPTED and known.driver == driver
                and known.pinned is not None and endpoint_changed(known.pinned, appliance.data)):
            self._move_claimed(known, appliance, info, sighting)
            return None  # never cached for the BLE fast path: every advert of the claim is checked again
        if known is None:
            self._make_room(address)
        entry, new = self.inbox.seen(driver, appliance, info.source, address, info.time)
        if entry.driver != driver:
            self.stats["key_collision"] += 1  # another driver claimed this key first
            return None
        self.sightings.note(key, info)
        told = self._sighted(key, sighting)  # back online: the connection already has this advert
        if new:
            self._fire_inbox("new", entry)
        if entry.state is EntryState.IGNORED:
            return entry
        if entry.state is EntryState.ADOPTED:
            if key in self._live:
                if not told:
                    self.catalog.discovery_updated(key, info)
            else:
                self._schedule_adopt(entry)  # adopted before a restart, or still retrying
            return entry
        if self._auto.get(driver):
            self._schedule_adopt(entry)
        return entry

    # -- the inbox cap -------------------------------------------------------------------
    def _make_room(self, address: str | None) -> None:
        """Before a new entry: drop the least recently seen pending entries beyond the caps."""
        assert self.inbox is not None
        victims = self.inbox.evict_for(address, self.settings.inbox_max_pending_per_address,
                                       self.settings.inbox_max_pending)
        if not victims:
            return
        for victim in victims:
            self._forget(victim.key)
        self.evicted += len(victims)
        self.stats["inbox_evicted"] += len(victims)
        suppressed = self._evict_log.allow("inbox_full")
        if suppressed is not None:
            _LOGGER.warning("Discovery inbox full (%d pending at most, %d per address): dropped the least recently "
                            "seen pending entries (%d so far); someone may be flooding the LAN with adverts",
                            self.settings.inbox_max_pending, self.settings.inbox_max_pending_per_address,
                            self.evicted)

    def _forget(self, key: str) -> None:
        """Drop what memory holds about a key whose entry is gone."""
        self.sightings.forget(key)
        task = self._adopting.pop(key, None)
        if task is not None:
            task.cancel()

    # -- claimed moves -------------------------------------------------------------------
    def _move_claimed(self, entry: InboxEntry, appliance: DiscoveredAppliance, info: DiscoveryInfo,
                      sighting: str) -> None:
        """A sighting puts an adopted key somewhere else: hold it for confirmation or proof, follow nothing."""
        assert self.inbox is not None
        key = entry.key
        # This sighting no longer vouches for the appliance at its adopted address (a real appliance that
        # moved re-announces under the same name): availability follows sightings of the pinned address only.
        self._unsight(key, sighting)
        claimed = where(appliance.data, info.host if isinstance(info, MdnsInfo) else info.address)
        self._claims[key] = (info, sighting, appliance)
        move = entry.move
        if move is not None and move.get("to") == claimed:
            move["last_seen"] = info.time
            self._maybe_prove(entry)
            return
        entry.move = {"from": where(entry.pinned or {}, entry.address), "to": claimed,
                      "data": dict(appliance.data), "proof": "checking", "first_seen": info.time,
                      "last_seen": info.time, "instance": info.name if isinstance(info, MdnsInfo) else info.address}
        self._proved_at.pop(key, None)
        self.inbox.save_news(entry)
        suppressed = self._move_log.allow(key)
        if suppressed is not None:
            _LOGGER.warning("%s (%s) is adopted at %s but was announced at %s (%s); not followed: confirm the "
                            "address change in the inbox if it really moved%s", entry.title, key, entry.move["from"],
                            claimed, entry.move["instance"],
                            f" ({suppressed} similar messages suppressed)" if suppressed else "")
        self._fire_inbox("move", entry)
        self._maybe_prove(entry)

    def _maybe_prove(self, entry: InboxEntry) -> None:
        key = entry.key
        prove = getattr(self.catalog, "async_prove_move", None)
        move = entry.move
        if move is None:
            return
        if not callable(prove):
            move["proof"] = "this driver cannot prove its identity: confirm the address change"
            return
        task = self._proving.get(key)
        if task is not None and not task.done():
            return
        now = asyncio.get_running_loop().time()
        last = self._proved_at.get(key)
        if last is not None and now - last < MOVE_RETRY_INTERVAL:
            return
        self._proved_at[key] = now
        self._proving[key] = asyncio.get_running_loop().create_task(self._prove(key), name=f"prove-{key}")

    async def _prove(self, key: str) -> None:
        """Ask the driver whether the appliance at the claimed address proves it is the adopted one; follow
        the move only then. The connection keeps talking to the adopted address all along."""
        try:
            claim = self._claims.get(key)
            entry = self.inbox.get(key) if self.inbox is not None else None
            if claim is None or entry is None or entry.move is None:
                return
            appliance = claim[2]
            to = entry.move.get("to")
            try:
                prove = self.catalog.async_prove_move  # type: ignore[union-attr]
                ok, reason = await asyncio.wait_for(prove(key, appliance), MOVE_PROOF_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # an unreachable address or a driver bug is "not proved", never fatal
                ok, reason = False, f"proof failed: {type(err).__name__}: {err}"
            entry = self.inbox.get(key) if self.inbox is not None else None
            if entry is None or entry.move is None or entry.move.get("to") != to:
                return  # decided or replaced meanwhile
            if ok:
                _LOGGER.info("%s (%s) proved it moved from %s to %s: following", entry.title, key,
                             entry.move.get("from"), to)
                await self._follow(entry, "proved")
                return
            entry.move["proof"] = str(reason)
            assert self.inbox is not None
            self.inbox.save_news(entry)
            self._fire_inbox("move", entry)
        finally:
            if self._proving.get(key) is asyncio.current_task():
                del self._proving[key]

    def _spawn_follow(self, key: str, how: str) -> None:
        async def run() -> None:
            entry = self.inbox.get(key) if self.inbox is not None else None
            if entry is not None and entry.move is not None:
                await self._follow(entry, how)

        task = asyncio.get_running_loop().create_task(run(), name=f"follow-{key}")
        self._proving[key] = task

    async def _follow(self, entry: InboxEntry, how: str) -> None:
        """Make the claimed move the adopted connection data and reconnect there."""
        assert self.inbox is not None and self.catalog is not None
        move = entry.move
        if move is None:
            return
        key = entry.key
        data = dict(move.get("data") or {})
        claim = self._claims.pop(key, None)
        appliance = claim[2] if claim is not None else replace(entry.appliance(), data=data)
        entry.pinned = dict(data)
        entry.data = dict(data)
        entry.address = str(data.get("host") or data.get("address") or entry.address)
        entry.move = None
        self.inbox.save(entry)
        self._proved_at.pop(key, None)
        self.moves_followed += 1
        _LOGGER.warning("%s (%s) now follows its move from %s to %s (%s)", entry.title, key, move.get("from"),
                        move.get("to"), how)
        follow = getattr(self.catalog, "async_follow", None)
        if callable(follow):
            try:
                # The catalog keeps its own record of the adoption: it must move too.
                await follow(key, appliance, proved=how == "proved")
            except Exception as err:  # not reachable yet: adoption retries with the new data in the background
                _LOGGER.warning("%s (%s): reconnecting at %s failed: %s", entry.title, key, move.get("to"), err)
                self._live.discard(key)
        elif key in self._live:
            # A catalog without the hook: stop the connection and adopt again with the new data.
            self._live.discard(key)
            await self.catalog.async_unload(key)
        if claim is not None:
            self.sightings.note(key, claim[0])
            self._sighted(key, claim[1])
        if key not in self._live:
            self._schedule_adopt(entry)
        self._fire_inbox("moved", entry)

    def _drop_claim(self, entry: InboxEntry) -> None:
        assert self.inbox is not None
        entry.move = None
        self._claims.pop(entry.key, None)
        self._proved_at.pop(entry.key, None)
        task = self._proving.pop(entry.key, None)
        if task is not None:
            task.cancel()
        self.inbox.save(entry)

    # -- adoption -----------------------------------------------------------------------
    def _schedule_adopt(self, entry: InboxEntry) -> None:
        if missing_bind_key(self._bind_keys(), entry.driver, entry.key, entry.data):
            return  # waits in the inbox, flagged needs_bind_key, until the household gives the key
        if self._missing_setup_code(entry):
            return  # waits, flagged needs_setup_code: commissioning needs the code on the appliance's label
        task = self._adopting.get(entry.key)
        if task is not None and not task.done():
            return
        self._adopting[entry.key] = asyncio.get_running_loop().create_task(
            self._adopt_loop(entry.key), name=f"adopt-{entry.key}")

    async def _adopt_once(self, entry: InboxEntry) -> str:
        assert self.catalog is not None and self.inbox is not None
        if entry.pinned is None:
            # The connection data it is adopted with: a sighting elsewhere does not move it.
            entry.pinned = dict(entry.data)
        appliance = replace(entry.appliance(), data=dict(entry.pinned))
        started_with = self._bind_keys().get(entry.driver, entry.key)
        device_id = await self.catalog.async_adopt(entry.driver, appliance)
        self._live.add(entry.key)
        self._started_with[entry.key] = started_with
        self.inbox.set_state(entry.key, EntryState.ADOPTED, device_id)
        self._fire_inbox("adopted", entry)
        # what each radio said last (including while the connection started): one that uses both hears both
        for info in self.sightings.latest(entry.key):
            self.catalog.discovery_updated(entry.key, info)
        self._update_availability(entry.key)
        return device_id

    async def _adopt_loop(self, key: str) -> None:
        delay = ADOPT_BACKOFF_START
        try:
            while True:
                entry = self.inbox.get(key) if self.inbox is not None else None
                if entry is None or entry.state is EntryState.IGNORED or key in self._live:
                    return
                try:
                    await self._adopt_once(entry)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    self.adopt_failures += 1
                    _LOGGER.warning("Adopting %s (%s) failed: %s: %s; retrying in %.0fs", entry.title, key,
                                    type(err).__name__, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, ADOPT_BACKOFF_MAX)
                if not self.is_online(key):
                    # Gone from the network: wait for the next sighting instead of hammering it.
                    await self.sightings.wait_seen(key)
        finally:
            if self._adopting.get(key) is asyncio.current_task():
                del self._adopting[key]

    # -- availability -------------------------------------------------------------------
    def _sighted(self, key: str, sighting: str) -> bool:
        """Note the sighting; True when it brought the key's device back and its connection was told."""
        return self.sightings.add(key, sighting) and self._update_availability(key)

    def sighting_gone(self, sighting: str) -> None:
        """A source lost a sighting (mDNS goodbye or expiry, BLE timeout): the appliances it vouched for and
        no other sighting does become unavailable. Sources call this and :meth:`handle`, nothing else."""
        self._fast.pop(sighting, None)
        self._waiting_for_load.pop(sighting, None)
        for key in self.sightings.gone(sighting):
            self._update_availability(key)

    def _unsight(self, key: str, sighting: str) -> None:
        self._fast.pop(sighting, None)
        if self.sightings.withdraw(key, sighting):
            self._update_availability(key)

    def _device_of(self, entry: InboxEntry) -> str | None:
        """The entry's device now (it may have been merged into another since adoption)."""
        assert self.hub is not None
        if entry.device_id and self.hub.devices.get(entry.device_id) is not None:
            return entry.device_id
        found = self.hub.devices.find(entry.identifiers, entry.connections)
        return found[0].id if found else None

    def _update_availability(self, key: str) -> bool:
        """Mark the key's device available or not from its sightings; True when it came back and its
        connection was handed each source's last advert (the caller need not pass the newest one again)."""
        assert self.inbox is not None and self.hub is not None
        entry = self.inbox.get(key)
        if entry is None or entry.state is not EntryState.ADOPTED or key not in self._live:
            return False
        if entry.data.get("availability") == "connection":
            # The connection knows better than adverts: a commissioned Matter appliance stops announcing itself
            # as commissionable, and its node's state on matter-server says whether it is reachable.
            return False
        device_id = self._device_of(entry)
        if device_id is None:
            return False
        online = any(self.is_online(e.key) for e in self._entries_of_device(device_id))
        if online == (device_id not in self._offline_devices):
            return False
        entity_ids = device_entity_ids(self.hub, device_id)
        if online:
            self._offline_devices.discard(device_id)
            availability(self.hub).mark_available(entity_ids, self._context)
            assert self.catalog is not None
            for last in self.sightings.latest(key):
                self.catalog.discovery_updated(key, last)
        else:
            self._offline_devices.add(device_id)
            availability(self.hub).mark_unavailable(entity_ids, self._context)
        _LOGGER.info("%s is %s", entry.title, "back online" if online else "unavailable")
        self.hub.bus.fire(EVENT_DEVICE_AVAILABILITY, {"device_id": device_id, "key": key, "available": online},
                          self._context)
        return online

    def _entries_of_device(self, device_id: str) -> Iterable[InboxEntry]:
        assert self.inbox is not None
        for entry in self.inbox.entries(EntryState.ADOPTED):
            if entry.key in self._live and self._device_of(entry) == device_id:
                yield entry

    def _fire_inbox(self, action: str, entry: InboxEntry) -> None:
        assert self.hub is not None
        if action != "new":
            self._fast.clear()  # a decision changed: the next advert of every address takes the full path
        self.hub.bus.fire(EVENT_DISCOVERY_INBOX_UPDATED,
                          {"action": action, "key": entry.key, "state": str(entry.state), "driver": entry.driver},
                          self._context)

