"""Benchmark: entity updates through the MQTT bridge to a subscriber, and end-to-end latency.

Starts a private Mosquitto on loopback, a hub with ``--entities`` sensors and the MQTT
bridge, and a plain aiomqtt subscriber in a separate process (as Home Assistant
would be). Prints one JSON object with medians over ``--runs`` runs:

* ``updates_per_s``: rounds that update every entity once, each round started as
  soon as the bridge has sent the previous one (so nothing is coalesced and every
  write becomes a message); state messages decoded by the subscriber per second,
  from the first write to the last delivery, and ``updates_lost`` (expected 0);
* ``latency_ms``: at a paced ``--rate`` of writes per second, the time from
  ``states.async_set`` to the subscriber decoding the message (p50 and p99).

Usage: ``python bench/mqtt.py [--entities 500] [--rounds 20] [--rate 200] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qilu_hub import Hub
from qilu_hub.context import Context
from qilu_hub.mqtt import MqttBridge, MqttSettings
from tests.testbeds.mosquitto import Mosquitto

DONE = "sensor.bench_done"


def _subscriber(port: int, out: Any, ready: Any) -> None:
    import aiomqtt

    async def main() -> None:
        latencies: list[float] = []
        count = 0
        first = last = 0.0
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-sub-{time.monotonic_ns()}") as client:
            await client.subscribe("qilu/bench/+/state", qos=1)
            ready.set()
            async for message in client.messages:
                if message.retain:
                    continue  # what the broker had before we subscribed
                now = time.monotonic()
                doc = json.loads(message.payload)  # decode, as a real consumer must
                if str(message.topic).endswith("sensor_bench_done/state"):
                    if doc["value"] < 0:
                        continue  # reset of the sentinel between runs
                    out.put({"count": count, "first": first, "last": last, "latencies": latencies})
                    latencies, count = [], 0
                    continue
                if count == 0:
                    first = now
                count += 1
                last = now
                sent = doc["attributes"].get("t")
                if isinstance(sent, float):
                    latencies.append((now - sent) * 1000)

    asyncio.run(main())


async def _setup(directory: Path, port: int, entities: int) -> tuple[Hub, MqttBridge, list[str]]:
    hub = Hub(directory, {"hub": {"name": "bench"}}, recorder=False)
    bridge = MqttBridge(MqttSettings(port=port, hub_id="bench", import_=False, federation=False))
    hub.add_component(bridge)
    await hub.async_start()
    device = hub.devices.async_get_or_create(source="bench", name="Bench", identifiers=[("bench", "1")])
    ids = []
    for i in range(entities):
        entity = hub.entities.async_get_or_create(unique_id=f"bench:{i}", capabilities=("power",),
                                                  name=f"Bench Power {i}", device_id=device.id)
        hub.states.async_set(entity.entity_id, 0.0, {"t": None})
        ids.append(entity.entity_id)
    done = hub.entities.async_get_or_create(unique_id="bench:done", capabilities=("power",), name="Bench Done",
                                            device_id=device.id)
    assert done.entity_id == DONE, done.entity_id
    hub.states.async_set(DONE, -1.0)
    deadline = time.monotonic() + 60
    while len(bridge.exported()) < entities + 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"export did not finish: {bridge.stats}")
        await asyncio.sleep(0.05)
    await _drain(bridge)  # the initial announcement must not reach the subscriber as live traffic
    return hub, bridge, ids


async def _drain(bridge: MqttBridge) -> None:
    """Wait until the bridge has published (and had acknowledged) everything written so far."""
    while not bridge.idle:
        await asyncio.sleep(0.005)


async def _finish(hub: Hub, bridge: MqttBridge, out: Any, marker: float) -> dict[str, Any]:
    # The sentinel must follow every update of the run on the wire, not share a batch with them.
    await _drain(bridge)
    hub.states.async_set(DONE, marker)
    result: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, out.get, True, 60)
    hub.states.async_set(DONE, -1.0)
    await asyncio.sleep(0.2)
    return result


async def _throughput(hub: Hub, bridge: MqttBridge, ids: list[str], rounds: int, out: Any,
                      marker: float) -> dict[str, float]:
    """Each round updates every entity once; the next round starts when the bridge has sent the last.

    Waiting per round keeps the bridge from coalescing (every write becomes a message), so the rate is
    the pipeline's capacity: state write, JSON, QoS 1 publish, broker, subscriber decode.
    """
    context = Context("bench")
    start = time.monotonic()
    for r in range(rounds):
        value = float(r)
        for entity_id in ids:
            hub.states.async_set(entity_id, value, {"t": time.monotonic()}, context)
        await _drain(bridge)
    result = await _finish(hub, bridge, out, marker)
    elapsed = result["last"] - start
    writes = rounds * len(ids)
    return {"delivered": result["count"], "updates_per_s": result["count"] / elapsed,
            "lost": writes - result["count"]}


async def _latency(hub: Hub, bridge: MqttBridge, ids: list[str], rate: float, seconds: float, out: Any,
                   marker: float) -> list[float]:
    context = Context("bench")
    interval = 1 / rate
    n = len(ids)
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        target = start + i * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        hub.states.async_set(ids[i % n], float(i), {"t": time.monotonic()}, context)
    result = await _finish(hub, bridge, out, marker)
    latencies: list[float] = result["latencies"]
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker", tls=False, persistence=False)
        broker.start()
        ctx = mp.get_context("spawn")
        out, ready = ctx.Queue(), ctx.Event()
        sub = ctx.Process(target=_subscriber, args=(broker.port, out, ready), daemon=True)
        hub = None
        try:
            hub, bridge, ids = await _setup(Path(tmp) / "hub", broker.port, args.entities)
            sub.start()
            if not await asyncio.get_running_loop().run_in_executor(None, ready.wait, 30):
                raise RuntimeError("subscriber did not start")
            await asyncio.sleep(0.5)
            tput, p50s, p99s = [], [], []
            marker = 0.0
            for _ in range(args.runs):
                marker += 1
                tput.append(await _throughput(hub, bridge, ids, args.rounds, out, marker))
                marker += 1
                lat = await _latency(hub, bridge, ids, args.rate, args.seconds, out, marker)
                p50s.append(_pct(lat, 0.50))
                p99s.append(_pct(lat, 0.99))
            return {
                "bench": "mqtt",
                "broker": "mosquitto (loopback, private instance)",
                "entities": args.entities,
                "updates_per_run": args.rounds * args.entities,
                "runs": args.runs,
                "qos_state": 1,
                "updates_per_s": round(statistics.median(t["updates_per_s"] for t in tput)),
                "updates_per_s_runs": [round(t["updates_per_s"]) for t in tput],
                "updates_lost": sum(int(t["lost"]) for t in tput),
                "latency_rate_per_s": args.rate,
                "latency_ms": {"p50": round(statistics.median(p50s), 2), "p99": round(statistics.median(p99s), 2)},
                "latency_p50_runs": [round(v, 2) for v in p50s],
                "latency_p99_runs": [round(v, 2) for v in p99s],
                "bridge_published": bridge.stats.published,
            }
        finally:
            if hub is not None:
                await hub.async_stop()
            if sub.is_alive():
                sub.terminate()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20, help="updates of every entity per run")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
