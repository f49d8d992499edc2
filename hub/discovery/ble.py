"""BLE discovery with bleak: one scanner per adapter, deduplicated adverts, a watchdog.

Each adapter gets one :class:`BleakScanner`, passive where the platform allows it
(BlueZ advertisement monitors) and active otherwise. Adverts are parsed into
:class:`BleInfo`; an advert identical to the previous one from the same address only
refreshes RSSI and last-seen time, a changed one is dispatched, at most once per
``min_interval`` per address (later changes within the interval are coalesced, the
newest wins). A device not heard for ``timeout`` seconds is reported lost.

The watchdog restarts a scanner that has been silent for ``watchdog`` seconds or
that failed (adapter removed, BlueZ restarted, D-Bus gone), with backoff, so an
adapter comes back without restarting the hub or the machine.

A scan is only ever stopped over a live D-Bus connection. After the system bus went
away, bleak still holds the dead connection until something reconnects it, and a
message sent on it fails inside dbus-fast, which then unregisters the event-loop
reader and writer of the dead socket's file descriptor *number*; by then that number
may belong to a new socket (bleak's new bus, another D-Bus client, an API connection),
which would go deaf for good. So the old scan is stopped after bleak reconnected, or,
while the bus is still down, kept aside and stopped once it is back, before a new scan
starts (a StopDiscovery sent after it would stop the new scan, on the same connection).

A machine with no D-Bus system bus (a container, a gateway without Bluetooth) has no BlueZ
either: while the bus's socket is absent the scanner says so once, looks for the socket
again every few seconds (a ``stat``) or at a restart request, and never loads bleak's BlueZ
backend (dbus-fast) meanwhile; no retries, no backoff, no repeated log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from .models import BleInfo
from .parse import ParseStats, ble_info

_LOGGER = logging.getLogger(__name__)

ScanningMode = Literal["auto", "active", "passive"]

# Passive scanning on BlueZ needs advertisement-monitor patterns; matching the Flags AD type
# (Core Spec Supplement Part A 1.3) with the usual LE values lets every ordinary advert through.
PASSIVE_PATTERNS = [OrPattern(0, AdvertisementDataType.FLAGS, bytes([flags])) for flags in (0x02, 0x06, 0x1A, 0x05)]

WATCHDOG_CHECK = 1.0
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
# The system bus's address when DBUS_SYSTEM_BUS_ADDRESS is unset (the D-Bus specification's well-known one).
DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"


def missing_system_bus() -> str | None:
    """The socket path of the D-Bus system bus if every address names a socket file that is not there, else None.

    Read before bleak's BlueZ backend is touched: no bus means no BlueZ, and nothing to load dbus-fast for.
    Addresses this cannot check (abstract sockets, TCP) count as present; dbus-fast finds out."""
    if sys.platform != "linux":
        return None
    missing = None
    for address in (os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS).split(";"):
        transport, _, options = address.partition(":")
        path = dict(option.partition("=")[::2] for option in options.split(",")).get("path")
        if transport != "unix" or not path or os.path.exists(path):
            return None
        missing = missing or path
    return missing


async def _bus_ready(timeout: float) -> bool:
    """Whether bleak's BlueZ connection is live, reconnecting it first if the system bus restarted.

    Always true off Linux (no D-Bus there). See the module docstring for why a dead connection must not be used."""
    if sys.platform != "linux":
        return True
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    try:
        await asyncio.wait_for(get_global_bluez_manager(), timeout)
    except Exception as err:  # the bus or BlueZ is still down: the watchdog tries again
        _LOGGER.debug("BlueZ D-Bus connection not available: %s", err)
        return False
    return True


class Track:
    """What is known of one address."""

    __slots__ = ("adapter", "ble_device", "dispatched", "info", "last_dispatch", "last_seen", "pending", "rssi",
                 "signature")

    def __init__(self, info: BleInfo, ble_device: BLEDevice | None, signature: tuple[Any, ...]) -> None:
        self.info = info
        self.ble_device = ble_device
        self.signature = signature
        self.rssi = info.rssi
        self.last_seen = info.time
        self.adapter = info.adapter
        self.last_dispatch = 0.0
        self.dispatched = 0
        self.pending: asyncio.TimerHandle | None = None


class AdapterScanner:
    """One adapter's scanner and its watchdog loop."""

    def __init__(self, source: BleSource, adapter: str | None) -> None:
        self.source = source
        self.adapter = adapter
        self.name = adapter or "default"
        self.scanner: BleakScanner | None = None
        self.mode: str | None = None
        self.last_advert = 0.0
        self.restarts = 0
        self.failures = 0
        self.last_error: str | None = None
        self.running = False
        self.passive_silent = False  # a passive scan that heard nothing: BlueZ without working monitors
        self.no_system_bus: str | None = None  # the bus socket looked for and not there (said once)
        self.bus_looks = 0  # times the socket was looked for in vain
        # Scans lost with the D-Bus connection, stopped once the connection is back (never over the dead one).
        self._stale: list[BleakScanner] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ble-scanner-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_scanner()

    def restart_now(self) -> None:
        self._wake.set()

    def _callback(self, device: BLEDevice, adv: AdvertisementData) -> None:
        self.last_advert = time.monotonic()
        self.source.handle_advert(device, adv, self.name)

    async def _start_scanner(self) -> None:
        bluez: dict[str, Any] = {"adapter": self.adapter} if self.adapter else {}
        wanted = self.source.scanning_mode
        modes: list[Literal["active", "passive"]]
        if wanted == "auto":
            modes = ["active"] if self.passive_silent else ["passive", "active"]
        else:
            modes = [wanted]
        error: Exception | None = None
        for mode in modes:
            args = dict(bluez, or_patterns=PASSIVE_PATTERNS) if mode == "passive" else bluez
            scanner = BleakScanner(detection_callback=self._callback, scanning_mode=mode, bluez=args)  # type: ignore[arg-type]
            try:
                await asyncio.wait_for(scanner.start(), self.source.start_timeout)
            except Exception as err:
                error = err
                with contextlib.suppress(Exception):
                    await scanner.stop()
                _LOGGER.debug("BLE %s scanning on %s failed: %s", mode, self.name, err)
                continue
            self.scanner, self.mode = scanner, mode
            return
        assert error is not None
        raise error

    async def _stop_scanner(self) -> None:
        scanner, self.scanner, self.running = self.scanner, None, False
        if scanner is not None:
            self._stale.append(scanner)
        await self._stop_stale()

    async def _stop_stale(self) -> None:
        """Stop the scans set aside, if bleak's D-Bus connection is live (reconnected if need be)."""
        if not self._stale or not await _bus_ready(self.source.start_timeout):
            return
        stale, self._stale = self._stale, []
        for scanner in stale:
            try:
                await asyncio.wait_for(scanner.stop(), self.source.start_timeout)
            except Exception as err:  # the adapter may be gone, or BlueZ restarted: nothing left to stop then
                _LOGGER.debug("Stopping BLE scanner on %s: %s", self.name, err)

    async def _run(self) -> None:
        delay = BACKOFF_START
        while True:
            if not self._stale and self._waited_for_bus():
                await self._sleep(self.source.bus_check)
                continue
            try:
                # Before the new scan, never after: StopDiscovery over the new connection would stop that scan too.
                await self._stop_stale()
                await self._start_scanner()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.failures += 1
                self.last_error = f"{type(err).__name__}: {err}"
                # Loud the first times, then quiet: a gateway without Bluetooth should not fill its log.
                level = logging.WARNING if self.failures <= 3 or self.failures % 20 == 0 else logging.DEBUG
                _LOGGER.log(level, "BLE scanner on %s could not start (%s); retrying in %.0fs", self.name,
                            self.last_error, delay)
                await self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.running = True
            started = self.last_advert = time.monotonic()
            _LOGGER.info("BLE scanner on %s running (%s)", self.name, self.mode)
            # Watch for silence; a restart request (adapter gone, explicit) cuts the wait short.
            while True:
                woke = await self._sleep(WATCHDOG_CHECK)
                if woke or time.monotonic() - self.last_advert > self.source.watchdog:
                    break
            if self.mode == "passive" and self.last_advert == started:
                # Passive scanning started but never delivered an advert; some controllers and BlueZ
                # builds accept advertisement monitors and then report nothing. Scan actively from now on.
                self.passive_silent = True
            if time.monotonic() - started > self.source.watchdog * 2:
                delay = BACKOFF_START  # it ran well for a while: the next failure starts the backoff afresh
            self.restarts += 1
            _LOGGER.warning("BLE scanner on %s silent for %.0fs or lost; restarting", self.name,
                            time.monotonic() - self.last_advert)
            await self._stop_scanner()

    def _waited_for_bus(self) -> bool:
        """Whether there is no system bus to scan over (logged once until it appears)."""
        missing = missing_system_bus()
        if missing is None:
            if self.no_system_bus is not None:
                _LOGGER.info("D-Bus system bus at %s is there now: BLE scanning on %s starts", self.no_system_bus,
                             self.name)
                self.no_system_bus = None
            return False
        self.bus_looks += 1
        if self.no_system_bus is None:
            self.no_system_bus = missing
            self.last_error = f"no D-Bus system bus ({missing}): no BlueZ"
            _LOGGER.warning("BLE scanning on %s is off: no D-Bus system bus at %s, so no BlueZ; it starts when "
                            "the bus appears", self.name, missing)
        return True

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return True early when a restart is requested."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True


class BleSource:
    """All adapters' adverts, deduplicated and rate-limited, reported as :class:`BleInfo`.

    ``on_advert(info)`` gets new and changed adverts; ``on_lost(address)`` devices not
    heard for ``timeout`` seconds; ``on_seen(address)``, if given, every advert (cheap).
    """

    def __init__(
        self,
        on_advert: Callable[[BleInfo], None],
        on_lost: Callable[[str], None],
        *,
        adapters: list[str] | None = None,
        scanning_mode: ScanningMode = "auto",
        timeout: float = 300.0,
        watchdog: float = 90.0,
        min_interval: float = 0.05,
        refresh: float = 60.0,
        start_timeout: float = 10.0,
        bus_check: float = 5.0,
        stats: ParseStats | None = None,
    ) -> None:
        self._on_advert = on_advert
        self._on_lost = on_lost
        self.scanning_mode: ScanningMode = scanning_mode
        self.timeout = timeout
        self.watchdog = watchdog
        self.min_interval = min_interval
        self.refresh = refresh
        self.start_timeout = start_timeout
        self.bus_check = bus_check  # seconds between looks for a system bus that was not there
        self.stats = stats if stats is not None else ParseStats()
        self.tracks: dict[str, Track] = {}
        self.scanners = [AdapterScanner(self, a) for a in (adapters or [None])]  # type: ignore[list-item]
        self.adverts = 0
        self.dispatched = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def async_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for scanner in self.scanners:
            scanner.start()
        self._sweeper = self._loop.create_task(self._sweep(), name="ble-sweeper")

    async def async_stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for scanner in self.scanners:
            await scanner.stop()
        for track in self.tracks.values():
            if track.pending is not None:
                track.pending.cancel()

    def ble_device(self, address: str) -> BLEDevice | None:
        """The latest :class:`BLEDevice` for an address (what ``async_connect`` needs)."""
        track = self.tracks.get(address.upper())
        return track.ble_device if track is not None else None

    def rssi(self, address: str) -> int | None:
        track = self.tracks.get(address.upper())
        return track.rssi if track is not None else None

    # -- the hot path -------------------------------------------------------------------
    def handle_advert(self, device: BLEDevice | None, adv: AdvertisementData, adapter: str) -> None:
        """bleak's detection callback: parse, deduplicate, rate-limit, dispatch. Never raises."""
        self.adverts += 1
        try:
            address = device.address if device is not None else None
            self.handle(ble_info(address, adv.local_name, adv.rssi, adv.manufacturer_data, adv.service_data,
                                 adv.service_uuids, adapter, stats=self.stats), device)
        except Exception:
            self.stats["ble_advert_error"] += 1
            _LOGGER.exception("Dropped a BLE advert that could not be handled")

    def handle(self, info: BleInfo | None, device: BLEDevice | None = None) -> None:
        if info is None:
            return
        now = info.time
        signature = (info.name, info.manufacturer_data, info.service_data, info.service_uuids)
        track = self.tracks.get(info.address)
        if track is None:
            track = self.tracks[info.address] = Track(info, device, signature)
            self._dispatch(track, now)
            return
        track.rssi = info.rssi
        track.last_seen = now
        track.adapter = info.adapter
        if device is not None:
            track.ble_device = device
        # Advert times are wall-clock times: a clock stepped back (NTP, a manual fix) makes the last dispatch
        # lie in the future. Count that as long ago, or every change would wait until the clock caught up.
        if track.last_dispatch > now:
            track.last_dispatch = now - max(self.refresh, self.min_interval)
        if track.signature == signature:
            # Same payload: only refresh now and then, so drivers that poll on sight still hear of it.
            if now - track.last_dispatch >= self.refresh and track.pending is None:
                track.info = info
                self._dispatch(track, now)
            else:
                self.stats["ble_duplicate"] += 1
            return
        track.signature = signature
        track.info = info
        wait = track.last_dispatch + self.min_interval - now
        if wait <= 0:
            self._dispatch(track, now)
        elif track.pending is None and self._loop is not None:
            self.stats["ble_coalesced"] += 1
            track.pending = self._loop.call_later(wait, self._flush, track)
        else:
            self.stats["ble_coalesced"] += 1

    def _flush(self, track: Track) -> None:
        track.pending = None
        self._dispatch(track, time.time())

    def _dispatch(self, track: Track, now: float) -> None:
        track.last_dispatch = now
        track.dispatched += 1
        self.dispatched += 1
        try:
            self._on_advert(track.info)
        except Exception:
            self.stats["ble_dispatch_error"] += 1
            _LOGGER.exception("BLE advert from %s failed in dispatch", track.info.address)

    # -- out of range -------------------------------------------------------------------
    def expire(self, now: float | None = None) -> list[str]:
        """Forget devices not heard for ``timeout`` seconds; returns their addresses."""
        now = time.time() if now is None else now
        for track in self.tracks.values():
            if track.last_seen > now:  # seen before the clock was stepped back: count from now, not from then
                track.last_seen = now
        lost = [a for a, t in self.tracks.items() if now - t.last_seen > self.timeout]
        for address in lost:
            track = self.tracks.pop(address)
            if track.pending is not None:
                track.pending.cancel()
            try:
                self._on_lost(address)
            except Exception:
                _LOGGER.exception("BLE lost callback failed for %s", address)
        return lost

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(max(self.timeout / 4, 0.1), 10.0))
            self.expire()

    def status(self) -> dict[str, Any]:
        return {
            "adapters": [
                {"adapter": s.name, "running": s.running, "mode": s.mode, "restarts": s.restarts,
                 "failures": s.failures, "last_error": s.last_error, "no_system_bus": s.no_system_bus is not None}
                for s in self.scanners
            ],
            "devices": len(self.tracks), "adverts": self.adverts, "dispatched": self.dispatched,
        }


def advertisement(
    name: str | None = None, rssi: int = -60, manufacturer_data: Mapping[int, bytes] | None = None,
    service_data: Mapping[str, bytes] | None = None, service_uuids: list[str] | None = None,
) -> AdvertisementData:
    """An :class:`AdvertisementData` as bleak builds it (for benchmarks and replaying captures)."""
    return AdvertisementData(name, dict(manufacturer_data or {}), dict(service_data or {}), list(service_uuids or []),
                             None, rssi, ())
