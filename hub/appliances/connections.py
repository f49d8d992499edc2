"""Connections: adopted appliances' connections, each supervised, persisted and re-opened at start.

:class:`Connections` is the one implementation of the :class:`~qilu_hub.appliances.catalog.DriverCatalog`
protocol: it holds the installed drivers (matched through the :class:`~qilu_hub.appliances.matching.MatcherIndex`),
adopts appliances (:func:`~qilu_hub.appliances.adoption.adopt_appliance`), and runs one supervisor task
per adopted appliance. Every call into a driver is guarded: synchronous ones (``identify``,
``connect``, ``discovery_updated``) by catching what they raise, asynchronous ones by a time limit
as well. A connection that fails to start, reports its appliance lost, or hangs on a command is
stopped (time-limited), its entities are marked unavailable (:mod:`qilu_hub.appliances.availability`),
and it is started again with backoff; other devices and the hub are not affected.

Adopted appliances are kept in the registry store (kind ``adopted``) and re-opened when the
hub starts. An adoption keeps the connection data it was made with, plus what the connection
learnt at start (``DeviceConnection.learned_data``: a pinned identity key). A sighting that
puts the appliance elsewhere is never followed here: the lifecycle asks :meth:`Connections.async_prove_move`
and calls :meth:`Connections.async_follow` once the appliance proved it, or the household confirmed the move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from qilu_hub.capabilities import CommandError
from qilu_hub.context import Context
from qilu_hub.core import EVENT_HUB_STOPPING
from qilu_hub.discovery.models import DiscoveryInfo, MdnsInfo
from qilu_hub.sdk._helpers import Backoff  # the drivers' reconnect backoff (with jitter), the same for supervisors
from qilu_hub.sdk._loading import async_loaded

from .adoption import adopt_appliance
from .appliance import DiscoveredAppliance
from .availability import availability, device_entity_ids
from .inbox import endpoint_changed
from .matching import MatcherIndex, identify

if TYPE_CHECKING:
    from qilu_hub.core import Hub
    from qilu_hub.model import Entity
    from qilu_hub.sdk import DeviceConnection, DeviceContext, Driver, Manifest

_LOGGER = logging.getLogger(__name__)

STORAGE_KIND = "adopted"

RunState = Literal["starting", "running", "unavailable", "stopped"]


def appliance_to_dict(appliance: DiscoveredAppliance) -> dict[str, Any]:
    data = asdict(appliance)
    data["identifiers"] = [list(i) for i in appliance.identifiers]
    data["connections"] = [list(c) for c in appliance.connections]
    data["data"] = dict(appliance.data)
    return data


def appliance_from_dict(data: dict[str, Any]) -> DiscoveredAppliance:
    return DiscoveredAppliance(
        key=data["key"], title=data["title"],
        identifiers=tuple((str(a), str(b)) for a, b in data.get("identifiers", ())),
        connections=tuple((str(a), str(b)) for a, b in data.get("connections", ())),
        manufacturer=data.get("manufacturer"), model=data.get("model"), data=dict(data.get("data") or {}),
    )


@dataclass(frozen=True, slots=True)
class Supervision:
    """How connections are supervised: time limits on a driver's start, stop and commands, and the retry backoff."""

    start_timeout: float = 15.0
    stop_timeout: float = 5.0
    command_timeout: float = 8.0
    retry_initial: float = 1.0
    retry_max: float = 60.0


@dataclass(slots=True)
class AdoptedDevice:
    """One adopted appliance and the supervision of its connection."""

    key: str  # "<driver>:<appliance key>"
    driver_name: str
    appliance: DiscoveredAppliance
    device_id: str
    state: RunState = "starting"
    connection: DeviceConnection | None = None
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = None
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    unregister: Any = None

    @property
    def problem(self) -> str | None:
        """What the running connection says is wrong with the appliance (``wrong_bind_key``...), if anything."""
        problem = getattr(self.connection, "problem", None)
        return problem if isinstance(problem, str) else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "driver": self.driver_name, "device_id": self.device_id, "state": self.state,
                "failures": self.failures, "restarts": self.restarts, "last_error": self.last_error,
                "title": self.appliance.title, "problem": self.problem}


class Connections:
    """Installed drivers and the supervised connections of adopted appliances (the ``DriverCatalog``).

    ``timing``: the :class:`Supervision` settings (time limits, retry backoff).
    ``persist``: keep adoptions in the registry store and re-open them at :meth:`async_start`.
    ``wait_for_start``: :meth:`async_adopt` returns once the first connection started, and raises (adopting
    nothing) when it failed, so the caller retries; otherwise the supervisor retries in the background.
    """

    name = "connections"

    def __init__(self, drivers: Iterable[Driver] = (), *, persist: bool = True, wait_for_start: bool = False,
                 timing: Supervision | None = None) -> None:
        self.drivers: dict[str, Driver] = {}
        self.timing = timing or Supervision()
        self.persist = persist
        self.wait_for_start = wait_for_start
        self.adopted: dict[str, AdoptedDevice] = {}
        self._by_appliance_key: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._index: MatcherIndex | None = None
        self._hub: Hub | None = None
        self._stopping = False  # hub shutting down: appliances vanishing is expected, not news
        for driver in drivers:
            self.register(driver)

    # -- drivers ------------------------------------------------------------------------
    def register(self, driver: Driver) -> None:
        name = driver.manifest.name
        if name in self.drivers and self.drivers[name] is not driver:
            _LOGGER.warning("Driver %s registered twice; the later one wins", name)
        self.drivers[name] = driver
        self._index = None  # rebuilt at the next advert

    def manifests(self) -> list[Manifest]:
        """The installed drivers' manifests (the lifecycle reads which adverts to look for from these)."""
        return [driver.manifest for driver in self.drivers.values()]

    def match(self, info: DiscoveryInfo) -> list[Driver]:
        """Drivers whose manifest matchers accept this advert, through the index (no driver code runs)."""
        index = self._index
        if index is None:
            index = self._index = MatcherIndex(self.drivers.values())
        return index.match(info)

    def identify(self, info: DiscoveryInfo) -> list[tuple[Driver, DiscoveredAppliance]]:
        """Matching drivers and what each makes of the advert; a driver that fails :func:`identify` is skipped."""
        out = []
        for driver in self.match(info):
            appliance = identify(driver, info)
            if appliance is not None:
                out.append((driver, appliance))
        return out

    async def async_identify(self, info: DiscoveryInfo) -> list[tuple[Driver, DiscoveredAppliance]]:
        """:meth:`identify`, with the matching drivers not loaded yet imported off the event loop first."""
        for driver in self.match(info):
            with contextlib.suppress(ImportError):  # reported once by the driver; it identifies nothing
                await async_loaded(driver)
        return self.identify(info)

    # -- adoption -----------------------------------------------------------------------
    def is_adopted(self, driver_name: str, appliance_key: str) -> bool:
        return f"{driver_name}:{appliance_key}" in self.adopted

    def get(self, key: str) -> AdoptedDevice | None:
        """An adopted device by "<driver>:<appliance key>", bare appliance key, or device id."""
        rec = self.adopted.get(key)
        if rec is None and key in self._by_appliance_key:
            rec = self.adopted.get(self._by_appliance_key[key])
        if rec is None:
            rec = next((r for r in self.adopted.values() if r.device_id == key), None)
        return rec

    async def async_adopt(self, driver_name: str, appliance: DiscoveredAppliance) -> str:
        """Create the device, persist the adoption and start its connection; returns the device id."""
        hub = self._require_hub()
        driver = self.drivers.get(driver_name)
        if driver is None:
            raise KeyError(f"no driver named {driver_name!r}")
        key = f"{driver_name}:{appliance.key}"
        async with self._locks.setdefault(key, asyncio.Lock()):
            existing = self.adopted.get(key)
            if existing is not None:
                return existing.device_id
            device = adopt_appliance(hub, driver_name, appliance)
            rec = AdoptedDevice(key, driver_name, appliance, device.id)
            first = await self._start_connection(rec, driver) if self.wait_for_start else None
            self._store(rec, appliance)
            self._launch(rec, first)
            return device.id

    async def async_remove(self, key: str) -> bool:
        """Stop an adopted device's connection and forget the adoption (the device registry entry stays)."""
        rec = self.get(key)
        if rec is None:
            return False
        await self._shutdown(rec)
        self.adopted.pop(rec.key, None)
        self._by_appliance_key.pop(rec.appliance.key, None)
        if self.persist:
            self._require_hub().storage.delete(STORAGE_KIND, rec.key)
        return True

    async def async_unload(self, key: str) -> None:
        """Stop an adopted appliance that the household now ignores (the catalog protocol's name for removal)."""
        await self.async_remove(key)

    def discovery_updated(self, key: str, info: DiscoveryInfo) -> None:
        """An adopted appliance was seen again: refresh its connection data, wake a waiting retry, pass it on.

        A sighting at another address is not followed (an advert proves nothing; anyone can send one): it
        is dropped here, and the lifecycle decides about the move (:meth:`async_prove_move`, :meth:`async_follow`).
        """
        rec = self.get(key)
        if rec is None:
            return
        driver = self.drivers.get(rec.driver_name)
        if driver is None:
            return
        # A BLE advert carries no connection data, and passive sensors send one every few seconds, so they
        # go straight to the connection; an mDNS record may bring new details (a profile version).
        appliance = identify(driver, info) if isinstance(info, MdnsInfo) else None
        if appliance is not None and appliance.key == rec.appliance.key:
            if endpoint_changed(rec.appliance.data, appliance.data):
                _LOGGER.debug("%s: a sighting elsewhere (%s) is not followed without proof or confirmation",
                              rec.key, info.host if isinstance(info, MdnsInfo) else "?")
                return
            merged = {**rec.appliance.data, **appliance.data}  # keeps what the connection learnt (a pinned key)
            if merged != dict(rec.appliance.data):
                self._store(rec, replace(appliance, data=merged))
                if rec.state == "running":
                    # New connection details: the running connection was opened with the old ones.
                    rec.lost.set()
        if rec.state == "unavailable":
            rec.wake.set()
        conn = rec.connection
        if conn is not None and rec.state == "running":
            try:
                conn.discovery_updated(info)
            except Exception as err:
                self._mark_lost(rec, f"discovery_updated raised {type(err).__name__}: {err}")

    async def async_prove_move(self, key: str, appliance: DiscoveredAppliance) -> tuple[bool, str]:
        """Whether the appliance at ``appliance``'s address proves it is the adopted ``key`` (the driver's
        ``async_prove_identity``, time-limited). Nothing is switched here."""
        rec = self.get(key)
        if rec is None:
            return False, "not adopted"
        driver = self.drivers.get(rec.driver_name)
        if driver is None:
            return False, f"driver {rec.driver_name!r} is not installed"
        try:
            ok, reason = await asyncio.wait_for(
                driver.async_prove_identity(self._context(rec), rec.appliance, appliance), self.timing.start_timeout)
        except TimeoutError:
            return False, "the appliance at the new address did not answer the identity check in time"
        except Exception as err:  # a driver bug, an unreachable address: not proved
            return False, f"identity check failed: {type(err).__name__}: {err}"
        return bool(ok), str(reason)

    async def async_follow(self, key: str, appliance: DiscoveredAppliance, proved: bool = False) -> None:
        """The appliance moved: keep the new connection data and reconnect there. Proved, it keeps what the
        adoption pinned (its identity key); confirmed by the household without proof, it is adopted afresh at
        the new address (the household vouches for what is there now: a replaced unit has a new key)."""
        rec = self.get(key)
        if rec is None:
            return
        data = {**rec.appliance.data, **appliance.data} if proved else dict(appliance.data)
        self._store(rec, replace(appliance, key=rec.appliance.key, data=data))
        if rec.state == "running":
            rec.lost.set()
        elif rec.state == "unavailable":
            rec.wake.set()

    def _store(self, rec: AdoptedDevice, appliance: DiscoveredAppliance) -> None:
        rec.appliance = appliance
        if self.persist:
            self._require_hub().storage.put(STORAGE_KIND, rec.key, {
                "driver": rec.driver_name, "device_id": rec.device_id, "appliance": appliance_to_dict(appliance)})

    def status(self) -> list[dict[str, Any]]:
        return [rec.as_dict() for rec in self.adopted.values()]

    def problem(self, key: str) -> str | None:
        """The problem an adopted appliance's connection reports (by any key :meth:`get` takes), or None."""
        rec = self.get(key)
        return rec.problem if rec is not None else None

    # -- component ----------------------------------------------------------------------
    def bind(self, hub: Hub) -> None:
        """Work for ``hub`` without re-opening stored adoptions (a catalog another component owns)."""
        self._hub = hub
        self._stopping = False

    async def async_start(self, hub: Hub) -> None:
        self.bind(hub)
        hub.bus.listen(EVENT_HUB_STOPPING, self._on_hub_stopping)
        if not self.persist:
            return
        for key, record in hub.storage.load(STORAGE_KIND).items():
            try:
                appliance = appliance_from_dict(record["appliance"])
                rec = AdoptedDevice(key, record["driver"], appliance, record["device_id"])
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.error("Adopted record %s is unreadable (%r); skipped", key, err)
                continue
            if rec.driver_name not in self.drivers:
                rec.state = "unavailable"
                rec.last_error = f"driver {rec.driver_name!r} is not installed"
                self.adopted[key] = rec
                self._by_appliance_key[appliance.key] = key
                self._set_unavailable(rec)
                continue
            self._launch(rec)

    def _on_hub_stopping(self, event: Any) -> None:
        self._stopping = True

    async def async_stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(self._shutdown(rec) for rec in self.adopted.values()), return_exceptions=True)

    # -- supervision --------------------------------------------------------------------
    def _require_hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError(f"the {self.name} component is not started")
        return self._hub

    def _context(self, rec: AdoptedDevice) -> DeviceContext:
        """What of the hub a driver's connection (or identity proof) for ``rec`` may use."""
        from qilu_hub.sdk._context import DeviceContext  # the SDK's view of the hub; it imports this package's parts

        return DeviceContext(self._require_hub(), rec.driver_name, rec.device_id, rec.appliance.key)

    def _launch(self, rec: AdoptedDevice, first: DeviceConnection | None = None) -> None:
        hub = self._require_hub()
        self.adopted[rec.key] = rec
        self._by_appliance_key[rec.appliance.key] = rec.key
        rec.unregister = hub.commands.register_device(rec.device_id, self._command_handler(rec))
        if first is not None:
            # Started already: it hears of sightings from now on, not from when its supervisor first runs.
            rec.connection, rec.state = first, "running"
        rec.task = asyncio.create_task(self._run(rec, first), name=f"driver-{rec.key}")

    async def _shutdown(self, rec: AdoptedDevice) -> None:
        if rec.unregister is not None:
            rec.unregister()
            rec.unregister = None
        if rec.task is not None:
            rec.task.cancel()
            await asyncio.gather(rec.task, return_exceptions=True)
            rec.task = None
        conn, rec.connection = rec.connection, None
        if conn is not None:
            # Started by async_adopt, then cancelled before its supervisor ran: nothing else stops it.
            await self._stop_connection(rec, conn)
        rec.state = "stopped"

    async def _start_connection(self, rec: AdoptedDevice, driver: Driver) -> DeviceConnection:
        """Connect and start once (time-limited); on failure the half-started connection is stopped, and the
        error raised."""
        rec.state = "starting"
        rec.lost.clear()
        conn: DeviceConnection | None = None
        try:
            # A driver not loaded yet (the first start after the hub started) is imported off the loop; one
            # that cannot load fails this start with its import error, as a driver that cannot connect does.
            conn = (await async_loaded(driver)).connect(self._context(rec), rec.appliance)
            conn._lost_callback = lambda reason, rec=rec: self._mark_lost(rec, reason)
            await asyncio.wait_for(conn.async_start(), self.timing.start_timeout)
        except BaseException:
            if conn is not None:
                await self._stop_connection(rec, conn)
            raise
        return conn

    async def _run(self, rec: AdoptedDevice, first: DeviceConnection | None) -> None:
        hub = self._require_hub()
        driver = self.drivers[rec.driver_name]
        backoff = Backoff(self.timing.retry_initial, self.timing.retry_max)
        context = Context(f"driver.{rec.driver_name}")
        while True:
            conn, first = first, None
            if conn is None:
                try:
                    conn = await self._start_connection(rec, driver)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    rec.failures += 1
                    rec.last_error = ("start timed out" if isinstance(err, TimeoutError)
                                      else f"{type(err).__name__}: {err}")
                    if not self._stopping:
                        _LOGGER.warning("%s: start failed (%s)", rec.key, rec.last_error)
                    await self._wait_retry(rec, backoff)
                    continue
            learned = dict(getattr(conn, "learned_data", None) or {})
            if learned and any(rec.appliance.data.get(k) != v for k, v in learned.items()):
                # Pinned at the first connection after adoption: every later start and proof checks it.
                self._store(rec, replace(rec.appliance, data={**rec.appliance.data, **learned}))
            rec.connection = conn
            rec.state = "running"
            backoff.reset()
            # Back: what the driver has not written at start gets its last good state again.
            availability(hub).mark_available(device_entity_ids(hub, rec.device_id), context)
            try:
                await rec.lost.wait()
            finally:
                rec.connection = None
                await self._stop_connection(rec, conn)
            rec.restarts += 1
            await self._wait_retry(rec, backoff)

    async def _wait_retry(self, rec: AdoptedDevice, backoff: Backoff) -> None:
        rec.state = "unavailable"
        self._set_unavailable(rec)
        rec.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rec.wake.wait(), backoff.next())

    async def _stop_connection(self, rec: AdoptedDevice, conn: DeviceConnection) -> None:
        conn._lost_callback = None
        try:
            await asyncio.wait_for(conn.async_stop(), self.timing.stop_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            _LOGGER.warning("%s: stop failed (%r); connection abandoned", rec.key, err)
        # The hub shutting down is not an outage of the appliance: recording one would put a false gap in
        # every entity's history at each restart.
        if rec.state != "stopped" and not self._stopping:
            self._set_unavailable(rec)

    def _mark_lost(self, rec: AdoptedDevice, reason: str) -> None:
        if rec.state == "running":
            rec.last_error = reason
            rec.failures += 1
            if not self._stopping:
                _LOGGER.warning("%s: lost (%s)", rec.key, reason)
            self._set_unavailable(rec)
        rec.lost.set()

    def _set_unavailable(self, rec: AdoptedDevice) -> None:
        hub = self._hub
        if hub is None:
            return
        availability(hub).mark_unavailable(device_entity_ids(hub, rec.device_id),
                                           Context(f"driver.{rec.driver_name}"))

    def _command_handler(self, rec: AdoptedDevice) -> Any:
        async def handle(entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
            conn = rec.connection
            if conn is None or rec.state != "running":
                raise CommandError("unavailable", f"{entity.entity_id} is unavailable ({rec.last_error or rec.state})")
            try:
                await asyncio.wait_for(conn.async_command(entity, command, args, context), self.timing.command_timeout)
            except TimeoutError:
                self._mark_lost(rec, f"{command} did not finish within {self.timing.command_timeout:g} s")
                raise CommandError("timeout", f"{entity.entity_id} did not answer {command}") from None
            except CommandError:
                raise
            except (ConnectionError, OSError) as err:
                self._mark_lost(rec, f"{command} failed: {err!r}")
                raise CommandError("unavailable", f"{entity.entity_id}: {err}") from err
            except Exception as err:
                raise CommandError("driver_error", f"{entity.entity_id}: {type(err).__name__}: {err}") from err

        return handle


__all__ = ["STORAGE_KIND", "AdoptedDevice", "Connections", "Supervision", "appliance_from_dict", "appliance_to_dict"]
