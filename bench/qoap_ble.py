"""QOAP BLE benchmark (bleak's BlueZ backend against a mock BlueZ on a private bus); prints one JSON object.

* ``advert_to_running_s``: from the appliance appearing on the mock (objects published, first advert)
  to its connection running (scanner callback → discovery → auto-adoption → GATT connect → framed
  description and state reads).
* ``command_round_trip_ms``: ``hub.commands.async_call`` of lock/unlock, from the call to its return
  (framed write, the appliance's result indication), median over ``--commands`` calls.

Medians over ``--runs`` fresh hubs. The mock's D-Bus round trips stand in for the radio, so these
measure the hub's own path, not air time. Run: ``python bench/qoap_ble.py [--runs 5] [--commands 50]``
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
from qilu_hub.drivers.manager import DriverManager  # noqa: E402
from qilu_hub.drivers.qoap.ble import id_hash  # noqa: E402
from qilu_hub.drivers.qoap.ble_simulator import QoapBleSimulator  # noqa: E402
from qilu_hub.drivers.qoap.driver import QoapDriver  # noqa: E402
from tests.testbeds.bluez import MockBluez, can_run  # noqa: E402


async def one_run(commands: int) -> dict[str, float]:
    mock = MockBluez().start()
    try:
        await mock.add_adapter("hci0")
        with tempfile.TemporaryDirectory() as tmp:
            hub = Hub(Path(tmp), {}, recorder=False)
            drivers = DriverManager([QoapDriver()], builtin=False, entry_points_group=None, retry_initial=0.2)
            hub.add_component(drivers)
            hub.add_component(ApplianceLifecycle("drivers", ble_enabled=True, mdns_enabled=False,
                                               ble_scanning_mode="active", auto_adopt={"qoap": True}))
            await hub.async_start()
            discovery: Any = hub.components["discovery"]
            while not (discovery.ble and discovery.ble.scanners[0].running):
                await asyncio.sleep(0.01)
            sim = QoapBleSimulator("C0:0B:00:00:00:01")
            key = f"qoap-ble-{id_hash(sim.device_id)}"
            try:
                t0 = time.perf_counter()
                await sim.start()
                while (rec := drivers.get(key)) is None or rec.state != "running":
                    await asyncio.sleep(0.002)
                adopted = time.perf_counter() - t0
                lock = next(e.entity_id for e in hub.entities.for_device(rec.device_id) if "lock" in e.capabilities)
                times = []
                for n in range(commands):
                    t = time.perf_counter()
                    await hub.commands.async_call(lock, "unlock" if n % 2 == 0 else "lock", {})
                    times.append(time.perf_counter() - t)
            finally:
                await sim.stop()
                await hub.async_stop()
        return {"advert_to_running_s": adopted, "command_round_trip_ms": statistics.median(times) * 1000}
    finally:
        mock.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--commands", type=int, default=50)
    args = parser.parse_args()
    reason = can_run()
    if reason:
        print(json.dumps({"error": reason}))
        return
    runs = [asyncio.run(one_run(args.commands)) for _ in range(args.runs)]
    print(json.dumps({"runs": args.runs, "commands": args.commands,
                      **{k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]},
                      "all": runs}, indent=2))


if __name__ == "__main__":
    main()
