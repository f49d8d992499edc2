"""Discovery under a flood of spoofed adverts, and the cost of following a confirmed move; prints one JSON object.

* ``capped``: 10,000 crafted ``_qoap._tcp`` announcements (each a new appliance id, from 100 forged addresses)
  through the real discovery path (driver matchers, the QOAP driver's identify, the inbox, the registry
  store) with the default caps: pending entries kept, registry.db size before and after, the size of the
  ``/api/discovery`` answer, seconds for the whole flood, entries evicted.
* ``uncapped``: the same with the caps raised past the flood, i.e. what the hub kept before the caps.
* ``confirmed_move_s``: a QOAP simulator adopted on loopback is announced at a second port (a profile 1.0
  appliance, so no proof: the household confirms); seconds from the confirmation to commands working again
  at the new address (median of runs).

Run: ``python bench/hostile_inbox.py [--adverts 10000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qilu_hub.appliances import ApplianceLifecycle  # noqa: E402
from qilu_hub.core import Hub  # noqa: E402
from qilu_hub.discovery import MdnsInfo  # noqa: E402
from qilu_hub.discovery.settings import DiscoverySettings  # noqa: E402
from qilu_hub.drivers.manager import DriverManager  # noqa: E402
from qilu_hub.drivers.qoap import profile  # noqa: E402
from qilu_hub.drivers.qoap.simulator import QoapSimulator  # noqa: E402


def _api_size(discovery: ApplianceLifecycle) -> int:
    """Bytes of the ``GET /api/discovery`` body an admin gets (what the route serialises)."""
    from qilu_hub.api import ha_format

    return len(ha_format.dumps({"available": True, "entries": discovery.inbox_entries(), "admin_only": False}))


async def flood(adverts: int, capped: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = DiscoverySettings(mdns_enabled=False, ble_enabled=False)
        if not capped:
            settings.inbox_max_pending = settings.inbox_max_pending_per_address = adverts + 1
        hub = Hub(Path(tmp) / "config", {}, recorder=False)
        hub.add_component(DriverManager(entry_points_group=None))
        discovery = ApplianceLifecycle("drivers", settings=settings)
        hub.add_component(discovery)
        await hub.async_start()
        db = Path(tmp) / "config" / "registry.db"
        before = db.stat().st_size
        started = time.perf_counter()
        for n in range(adverts):
            address = f"10.66.0.{n % 100 + 1}"  # forged: mDNS carries whatever address the sender writes
            props = {"id": f"qoap-spoof-{n:06d}", "model": "QRF-520", "mf": "Qilu Appliances", "pv": "1.1",
                     "caps": "door,on_off,power,temperature", "name": "Fridge " + "x" * 60}
            discovery.handle(MdnsInfo(profile.MDNS_TYPE, f"spoof-{n}.{profile.MDNS_TYPE}", f"spoof-{n}.local.",
                                      (address,), 80, props), f"mdns:spoof-{n}")
            if n == 0:
                await discovery.async_wait_for_loads()  # the first advert's driver import (in a thread) counts too
        seconds = time.perf_counter() - started
        assert discovery.inbox is not None
        result = {"adverts": adverts, "pending": len(discovery.inbox), "registry_db_bytes_before": before,
                  "registry_db_bytes_after": db.stat().st_size, "api_discovery_bytes": _api_size(discovery),
                  "evicted": discovery.evicted, "seconds": round(seconds, 2),
                  "max_pending": settings.inbox_max_pending,
                  "max_pending_per_address": settings.inbox_max_pending_per_address}
        await hub.async_stop()
        return result


async def confirmed_move() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub(Path(tmp) / "config", {}, recorder=False)
        drivers = DriverManager(entry_points_group=None, retry_initial=0.05, retry_max=0.5)
        hub.add_component(drivers)
        discovery = ApplianceLifecycle("drivers", mdns_enabled=False, ble_enabled=False)
        hub.add_component(discovery)
        await hub.async_start()
        old = QoapSimulator("fridge", variant="profile_1_0", device_id="qoap-bench-move")
        new = QoapSimulator("fridge", variant="profile_1_0", device_id="qoap-bench-move")
        await old.start()
        await new.start()
        try:
            def advert(sim: QoapSimulator) -> MdnsInfo:
                return MdnsInfo(profile.MDNS_TYPE, f"{sim.instance}.{profile.MDNS_TYPE}", "f.local.", (sim.host,),
                                sim.port, sim.txt())

            discovery.handle(advert(old), "mdns:a")
            await discovery.async_wait_for_loads()
            await discovery.async_adopt(old.device_id)
            rec = drivers.get(old.device_id)
            assert rec is not None
            while rec.state != "running":
                await asyncio.sleep(0.01)
            switch = next(e.entity_id for e in hub.entities.for_device(rec.device_id) if "on_off" in e.capabilities)
            discovery.handle(advert(new), "mdns:b")
            started = time.perf_counter()
            await discovery.async_confirm_move(old.device_id)
            for _ in range(2000):  # bounded: 20 s
                try:
                    await hub.commands.async_call(switch, "toggle", {})
                    if new.commands:
                        break
                except Exception:  # unavailable while it reconnects
                    pass
                await asyncio.sleep(0.01)
            return time.perf_counter() - started
        finally:
            await old.stop()
            await new.stop()
            await hub.async_stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adverts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    capped = await flood(args.adverts, capped=True)
    uncapped = await flood(args.adverts, capped=False)
    moves = [await confirmed_move() for _ in range(args.runs)]
    print(json.dumps({"capped": capped, "uncapped": uncapped,
                      "confirmed_move_s": round(statistics.median(moves), 3)}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
