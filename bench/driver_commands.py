"""Command latency through the driver stack: hub.commands.async_call -> driver -> simulator -> state.

QOAP: the state is applied from the HTTP reply. Shelly: the state arrives with aioshelly's
NotifyStatus push over the WebSocket, so this times the full push path. Prints JSON.
Usage: python bench/driver_commands.py [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time

from qilu_hub.core import Hub
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.qoap.simulator import QoapSimulator
from qilu_hub.drivers.shelly.simulator import ShellySimulator
from qilu_hub.sdk.testing import wait_for


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(samples), "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3)}


async def main(n: int) -> dict[str, object]:
    hub = Hub(tempfile.mkdtemp(prefix="bench-drivers-"), {}, recorder=False)
    manager = DriverManager(entry_points_group=None)
    hub.add_component(manager)
    await hub.async_start()
    qoap, shelly = QoapSimulator("fridge"), ShellySimulator("plus1pm")
    await qoap.start()
    await shelly.start()
    from qilu_hub.sdk import DiscoveredAppliance

    t0 = time.perf_counter()
    fridge = await manager.async_adopt("qoap", DiscoveredAppliance(
        key=qoap.device_id, title="Fridge", identifiers=(("qoap", qoap.device_id),),
        data={"host": "127.0.0.1", "port": qoap.port}))
    plug = await manager.async_adopt("shelly", DiscoveredAppliance(
        key=shelly.mac.lower(), title="Plug", identifiers=(("shelly", shelly.device_id),),
        data={"host": "127.0.0.1", "port": shelly.port}))
    await wait_for(lambda: all(r["state"] == "running" for r in manager.status()), what="running")
    adopt_s = time.perf_counter() - t0
    switch_q = next(e.entity_id for e in hub.entities.for_device(fridge) if e.domain == "switch")
    switch_s = next(e.entity_id for e in hub.entities.for_device(plug) if e.domain == "switch")

    qoap_samples = []
    for i in range(n):
        start = time.perf_counter()
        await hub.commands.async_call(switch_q, "turn_on" if i % 2 == 0 else "turn_off")
        qoap_samples.append(time.perf_counter() - start)

    shelly_samples = []
    for i in range(n):
        want = "on" if i % 2 == 0 else "off"
        start = time.perf_counter()
        await hub.commands.async_call(switch_s, "turn_on" if want == "on" else "turn_off")
        while getattr(hub.states.get(switch_s), "value", None) != want:
            await asyncio.sleep(0)
        shelly_samples.append(time.perf_counter() - start)

    await hub.async_stop()
    await qoap.stop()
    await shelly.stop()
    return {"bench": "driver_commands", "adopt_two_appliances_s": round(adopt_s, 3),
            "qoap_command_to_state": summary(qoap_samples), "shelly_command_to_pushed_state": summary(shelly_samples)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(asyncio.run(main(parser.parse_args().n))))
