"""Encrypted passive BLE: adverts per second from discovery_updated to states for BTHome and MiBeacon sensors,
plaintext vs encrypted with the right bind key (AES-CCM in the parser) vs a wrong key (after the connection has
flagged it: adverts are dropped before the parser but for one probe a minute). 20 sensors per case; the median
of ``--repeats`` runs. Prints JSON. Usage: python bench/ble_encrypted.py [--rounds 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time

from qilu_hub.appliances.bind_keys import BindKey, BindKeys
from qilu_hub.core import Hub
from qilu_hub.drivers.bthome.simulator import BTHomeSimulator
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.xiaomi.simulator import XiaomiSimulator
from qilu_hub.sdk.testing import wait_for

KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
WRONG = bytes(16)
Sim = BTHomeSimulator | XiaomiSimulator


def make(driver: str, serial: int, key: bytes | None) -> Sim:
    return BTHomeSimulator("climate", serial, bind_key=key) if driver == "bthome" else XiaomiSimulator(serial, key)


async def one_run(driver: str, mode: str, rounds: int) -> float:
    hub = Hub(tempfile.mkdtemp(prefix="bench-blekeys-"), {}, recorder=False)
    manager = DriverManager(entry_points_group=None)
    hub.add_component(manager)
    await hub.async_start()
    sims = [make(driver, 100 + i, None if mode == "plain" else KEY) for i in range(20)]
    keys = []
    for sim in sims:
        [(drv, appliance)] = manager.identify(sim.advert())
        if mode != "plain":
            BindKeys(hub.storage).set(drv.manifest.name, appliance.key, BindKey(KEY if mode == "key" else WRONG))
        await manager.async_adopt(drv.manifest.name, appliance)
        keys.append(f"{drv.manifest.name}:{appliance.key}")
    await wait_for(lambda: all(r["state"] == "running" for r in manager.status()), what="running")
    adverts = []
    for _ in range(rounds):
        for key, sim in zip(keys, sims, strict=True):
            sim.step()
            adverts.append((key, sim.advert()))
    warm = len(keys) * 5  # the first adverts flag a wrong key; the steady state is what a household lives with
    for key, info in adverts[:warm]:
        manager.discovery_updated(key, info)
    start = time.perf_counter()
    for key, info in adverts[warm:]:
        manager.discovery_updated(key, info)
    elapsed = time.perf_counter() - start
    if mode == "wrong":
        assert all(r["problem"] == "wrong_bind_key" for r in manager.status())
    elif mode == "key":
        assert all(r["problem"] is None for r in manager.status())
    await hub.async_stop()
    return (len(adverts) - warm) / elapsed


async def main(rounds: int, repeats: int) -> dict[str, object]:
    result: dict[str, object] = {"bench": "ble_encrypted", "sensors": 20, "rounds": rounds, "repeats": repeats}
    for driver in ("bthome", "xiaomi"):
        for mode in ("plain", "key", "wrong"):
            runs = [await one_run(driver, mode, rounds) for _ in range(repeats)]
            result[f"{driver}_{mode}_adverts_per_s"] = round(statistics.median(runs))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the wrong-key case logs its one warning per sensor
    print(json.dumps(asyncio.run(main(args.rounds, args.repeats))))
