"""Passive BLE throughput: adverts per second from discovery_updated to states (parse + publish), for
BTHome and MiBeacon sensors, 20 of each. Prints JSON. Usage: python bench/ble_adverts.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time

from qilu_hub.core import Hub
from qilu_hub.drivers.bthome.simulator import BTHomeSimulator
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.xiaomi.simulator import XiaomiSimulator
from qilu_hub.sdk.testing import wait_for


async def main(rounds: int) -> dict[str, object]:
    hub = Hub(tempfile.mkdtemp(prefix="bench-ble-"), {}, recorder=False)
    manager = DriverManager(entry_points_group=None)
    hub.add_component(manager)
    await hub.async_start()
    sims: list[BTHomeSimulator | XiaomiSimulator] = [BTHomeSimulator("climate", i) for i in range(20)]
    sims += [XiaomiSimulator(i) for i in range(20)]
    keys = []
    for sim in sims:
        [(driver, appliance)] = manager.identify(sim.advert())
        await manager.async_adopt(driver.manifest.name, appliance)
        keys.append(f"{driver.manifest.name}:{appliance.key}")
    await wait_for(lambda: all(r["state"] == "running" for r in manager.status()), what="running")
    result: dict[str, object] = {"bench": "ble_adverts", "sensors": len(sims)}
    for name in ("bthome", "xiaomi"):
        pairs = [(k, s) for k, s in zip(keys, sims, strict=True) if k.startswith(name)]
        adverts = []
        for _ in range(rounds):
            for key, sim in pairs:
                sim.step()
                adverts.append((key, sim.advert()))
        writes = hub.states.writes
        start = time.perf_counter()
        for key, info in adverts:
            manager.discovery_updated(key, info)
        elapsed = time.perf_counter() - start
        result[f"{name}_adverts_per_s"] = round(len(adverts) / elapsed)
        result[f"{name}_state_writes"] = hub.states.writes - writes
    await hub.async_stop()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(asyncio.run(main(parser.parse_args().rounds))))
