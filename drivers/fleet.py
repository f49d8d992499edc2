"""Start many simulators of one kind: what ``qilu-hub simulate`` and the demo run.

Network simulators serve on the bind address and advertise over mDNS bound to it (never
on all interfaces). WLED clients only talk to port 80, so on loopback each WLED gets its
own address, a random free one in 127/8; elsewhere one WLED per address. BLE simulators produce advert
payloads on an interval for whoever feeds a BLE mock or the driver manager.

Identities (MACs, QOAP ids, BLE addresses) are unique per fleet: their serial numbers start at a
random base chosen per fleet, or one derived from ``seed`` (the same seed, the same identities), so
two demos or simulator runs on one LAN never announce the same appliance. Names and WLED addresses
follow the position in the fleet (1, 2, ...), not the serial.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import ipaddress
import random
import socket
from collections.abc import Callable
from typing import Any

from qilu_hub.discovery.models import BleInfo
from qilu_hub.sdk.testing import MdnsAdvertiser

from .bthome.simulator import BTHomeSimulator
from .kinds import BLE_KINDS as BLE_KINDS  # named here too, as before
from .kinds import KINDS
from .kinds import NETWORK_KINDS as NETWORK_KINDS
from .qoap.simulator import QoapSimulator, Variant
from .shelly.simulator import ShellySimulator
from .wled.simulator import WledSimulator
from .xiaomi.simulator import XiaomiSimulator

# Serials are 16-bit in the MACs and BLE addresses they make; bases leave room for a fleet of a few thousand.
SERIAL_BASES = 0xF000


def serial_base(seed: str | None = None) -> int:
    """Where a fleet's serial numbers start: random, or fixed by ``seed``."""
    if seed is None:
        return random.SystemRandom().randrange(1, SERIAL_BASES)
    return int.from_bytes(hashlib.sha256(b"qilu-fleet\n" + seed.encode()).digest()[:4], "big") % (SERIAL_BASES - 1) + 1


_WLED_HOSTS: set[str] = set()  # loopback addresses handed to simulated WLEDs by this process


def free_loopback_host(port: int, avoid: frozenset[str] = frozenset(), tries: int = 64) -> str:
    """A random address in 127/8 (outside 127.0.0.0/16, where resolvers and /etc/hosts live) on which ``port``
    is free now. For servers whose clients insist on one port (WLED's port 80): two demos, or a demo and the
    test suite, on one machine then never meet. Binding ``port`` below 1024 needs root or
    CAP_NET_BIND_SERVICE; without it the address is returned unprobed and the server's own bind reports that."""
    rng = random.SystemRandom()  # not the random module's shared state, which tests may seed
    for _ in range(tries):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if host in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
            try:
                probe.bind((host, port))
            except PermissionError:
                return host
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    continue
                raise
            return host
    raise OSError(errno.EADDRINUSE, f"no free loopback address for port {port} after {tries} tries")


def wled_address(bind: str, index: int) -> str:
    if ipaddress.ip_address(bind).is_loopback:
        # Not one this process handed out already: that WLED may not have bound its port yet.
        host = free_loopback_host(80, frozenset(_WLED_HOSTS))
        _WLED_HOSTS.add(host)
        return host
    if index:
        raise ValueError("WLED listens on port 80: one simulated WLED per address outside loopback")
    return bind


class Fleet:
    def __init__(self, bind: str = "127.0.0.1", advertiser: MdnsAdvertiser | None = None, *,
                 seed: str | None = None) -> None:
        self.bind = bind
        self.seed = seed
        self.serial_base = serial_base(seed)
        self.advertiser = advertiser or MdnsAdvertiser(bind)
        self._own_advertiser = advertiser is None
        self.network: list[Any] = []
        self.ble: list[BTHomeSimulator | XiaomiSimulator] = []
        self._ble_task: asyncio.Task[None] | None = None

    async def add(self, kind: str, count: int = 1, *, variant: Variant = "ok", start_serial: int = 1) -> list[Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown simulator kind {kind!r} (known: {', '.join(KINDS)})")
        sims: list[Any] = []
        for n in range(count):
            index = start_serial + n  # position in the fleet: names and WLED addresses
            serial = (self.serial_base + index - 1) % 0x10000 or 1  # identity: unique per fleet (or seed)
            if kind == "shelly":
                sims.append(ShellySimulator("plus1pm", self.bind, serial=serial, advertiser=self.advertiser))
            elif kind == "shelly-cover":
                sims.append(ShellySimulator("plus2pm", self.bind, serial=serial, advertiser=self.advertiser))
            elif kind == "wled":
                sims.append(WledSimulator(wled_address(self.bind, index - 1), 80, serial=serial,
                                          advertiser=self.advertiser, name=f"WLED {index}" if index > 1 else "WLED"))
            elif kind in ("air_conditioner", "fridge", "washing_machine"):
                title = QoapSimulator.title_of(kind)
                sims.append(QoapSimulator(kind, self.bind, serial=serial, advertiser=self.advertiser, variant=variant,
                                          name=f"{title} {index}" if index > 1 else title,
                                          seed=self.seed))
            elif kind == "bthome":
                self.ble.append(BTHomeSimulator("climate", serial))
            elif kind == "bthome-motion":
                self.ble.append(BTHomeSimulator("motion", serial))
            else:
                self.ble.append(XiaomiSimulator(serial))
        # Concurrently: mDNS probing takes about a second per service when done one by one.
        await asyncio.gather(*(sim.start() for sim in sims))
        self.network.extend(sims)
        return sims

    def run_ble(self, sink: Callable[[BleInfo], None], interval: float = 2.0) -> None:
        """Step every BLE simulator each ``interval`` and hand its advert to ``sink``."""
        async def loop() -> None:
            while True:
                for sim in self.ble:
                    sim.step()
                    sink(sim.advert())
                await asyncio.sleep(interval)

        self._ble_task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._ble_task is not None:
            self._ble_task.cancel()
            await asyncio.gather(self._ble_task, return_exceptions=True)
        await asyncio.gather(*(sim.stop() for sim in self.network), return_exceptions=True)
        if self._own_advertiser:
            await self.advertiser.close()
