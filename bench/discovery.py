"""Discovery benchmarks; prints one JSON object.

* ``mdns_start_to_adopted_s``: from hub start (creating its zeroconf included) to all of
  50 appliances on an emulated LAN (network namespaces, 2 appliance hosts x 25 services,
  real multicast) adopted by the auto-adopting test driver. Needs root; median of runs.
* ``ble_adverts_per_s``: BLE adverts through the real hot path (bleak's callback
  signature → parse → dedup → driver matchers → identify → inbox → the adopted
  device's connection), every advert a changed payload from 1,000 devices; also the
  rate for repeated identical adverts (the dedup path). One process, one core.

Run: ``python bench/discovery.py [--runs 5] [--adverts 200000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bleak.backends.device import BLEDevice  # noqa: E402
from zeroconf import IPVersion  # noqa: E402
from zeroconf.asyncio import AsyncZeroconf  # noqa: E402

from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog  # noqa: E402
from qilu_hub.core import Hub  # noqa: E402
from qilu_hub.discovery.ble import BleSource, advertisement  # noqa: E402
from tests.discovery.qd_driver import QD_COMPANY, QD_TYPE, QdDriver  # noqa: E402
from tests.testbeds.netns import EmulatedLan, can_build, in_netns, popen  # noqa: E402


async def _hub(config_dir: Path, driver: QdDriver, **settings: Any) -> tuple[Hub, ApplianceLifecycle]:
    hub = Hub(config_dir, {}, recorder=False)
    manager = ApplianceLifecycle(lambda h: StaticCatalog(h, [driver]), **settings)
    hub.add_component(manager)
    await hub.async_start()
    return hub, manager


async def mdns_run(lan: EmulatedLan, config_dir: Path) -> float:
    driver = QdDriver()
    t0 = time.perf_counter()
    with in_netns(lan.hub):
        aiozc = AsyncZeroconf(interfaces=[lan.hub_address], ip_version=IPVersion.V4Only)
    hub, manager = await _hub(config_dir, driver, mdns_enabled=True, ble_enabled=False, zeroconf=aiozc)
    try:
        while not (len(driver.connections) == 50 and all(e["state"] == "adopted" for e in manager.inbox_entries())):
            await asyncio.sleep(0.002)
        return time.perf_counter() - t0
    finally:
        await hub.async_stop()
        await aiozc.async_close()


def bench_mdns(runs: int) -> dict[str, object]:
    reason = can_build()
    if reason:
        return {"mdns_skipped": reason}
    lan = EmulatedLan(prefix="qdb-", subnet="10.78.1", hosts=2).create()
    procs = []
    try:
        for i in (1, 2):
            proc = popen(lan.app(i), [sys.executable, "-m", "tests.testbeds.mdns_responder", lan.app_address(i), "25",
                                      QD_TYPE, f"b{i}"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().startswith("registered")
        times = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                times.append(asyncio.run(mdns_run(lan, Path(tmp))))
        return {"mdns_appliances": 50, "mdns_start_to_adopted_s": round(statistics.median(times), 3),
                "mdns_runs_s": [round(t, 3) for t in times]}
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
        lan.remove()


async def ble_run(adverts: int) -> dict[str, float]:
    driver = QdDriver()
    with tempfile.TemporaryDirectory() as tmp:
        hub, manager = await _hub(Path(tmp), driver, mdns_enabled=False, ble_enabled=False)
        try:
            source = BleSource(manager._on_ble, manager._on_ble_lost, min_interval=0.0)
            devices = [BLEDevice(f"C0:78:00:00:{n >> 8:02X}:{n & 0xFF:02X}", f"qd{n}", None) for n in range(1000)]
            # Warm-up: every device adopted once (its connection then gets every later advert).
            for n, device in enumerate(devices):
                source.handle_advert(device, advertisement(f"qd{n}", -60, {QD_COMPANY: b"\x00\x00"}), "hci0")
            while len(manager._live) < len(devices):
                await asyncio.sleep(0.01)
            batch = [(devices[i % 1000], advertisement(f"qd{i % 1000}", -60 - i % 20,
                                                       {QD_COMPANY: (i // 1000 + 1).to_bytes(2, "big")}))
                     for i in range(adverts)]
            t0 = time.perf_counter()
            for device, adv in batch:
                source.handle_advert(device, adv, "hci0")
            changed = adverts / (time.perf_counter() - t0)
            dispatched = source.dispatched
            t0 = time.perf_counter()
            for device, adv in batch[-1000:] * (adverts // 1000):
                source.handle_advert(device, adv, "hci0")
            duplicate = adverts / (time.perf_counter() - t0)
            assert source.dispatched == dispatched, "identical adverts must not be dispatched"
            assert all(len(c.updates) >= adverts // 1000 for c in driver.connections.values())
            return {"ble_adverts_per_s": round(changed), "ble_duplicate_adverts_per_s": round(duplicate),
                    "ble_devices": len(devices), "ble_adverts": adverts}
        finally:
            await hub.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--adverts", type=int, default=200_000)
    args = parser.parse_args()
    result: dict[str, object] = {}
    result.update(bench_mdns(args.runs))
    ble = [asyncio.run(ble_run(args.adverts)) for _ in range(3)]
    result.update({k: statistics.median(r[k] for r in ble) for k in ble[0]})
    result["ble_runs_per_s"] = [r["ble_adverts_per_s"] for r in ble]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
