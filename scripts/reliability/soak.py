"""Soak: a compressed day of a busy home, sampled for leaks; prints JSON and writes a PNG plot.

    python scripts/reliability/soak.py --minutes 60                  # the documented target
    python scripts/reliability/soak.py --minutes 10 --plot soak.png  # a shorter run

Two processes, all on loopback. The **hub** (this process) runs the driver manager, virtual
appliances, the recorder, the API and the MQTT bridge to a private Mosquitto. The **load**
process runs 200 QOAP appliance simulators (fridges, washing machines, air conditioners) that the
hub adopts and keeps a WebSocket to, plus the clients: a dashboard-like Home Assistant WebSocket
client (subscribe_entities, periodic get_states, service calls), an msgpack stream client as an XR
headset is (subscribe all, calls), and a plain MQTT client reading everything the bridge exports.
The client call rate follows a day curve (quiet night, morning and evening peaks) over the run; an
appliance reboots every few seconds and the broker restarts twice.

Every ``--sample`` seconds the hub records its RSS, open fds, asyncio tasks, bus listeners, the
largest bus subscriber queue, API queues and events per second. Slopes are least-squares fits
over the samples after the first fifth (start-up and caches warming are not leaks), per hour.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

KINDS = ("fridge", "washing_machine", "air_conditioner")


def day_activity(fraction: float) -> float:
    """Relative activity at this point of a day (0 = midnight): low at night, peaks at 8:00 and 19:00."""
    hour = (fraction % 1.0) * 24
    morning = math.exp(-((hour - 8) ** 2) / 4)
    evening = math.exp(-((hour - 19) ** 2) / 6)
    return 0.1 + morning + 1.2 * evening


# -- load process ---------------------------------------------------------------------------


async def _load(args: argparse.Namespace) -> None:
    import aiohttp
    import aiomqtt
    import msgpack

    from qilu_hub.drivers.qoap.simulator import QoapSimulator

    sims = [QoapSimulator(KINDS[i % 3], serial=i + 1, tick=args.tick, restart_delay=0.5, time_scale=args.time_scale)
            for i in range(args.appliances)]
    for sim in sims:
        await sim.start()
    Path(args.ports_file).write_text(json.dumps([{"port": s.port, "txt": s.txt()} for s in sims]))
    go = Path(args.ports_file + ".go")
    while not go.exists():
        await asyncio.sleep(0.2)
    url = go.read_text().strip()
    token = os.environ["SOAK_TOKEN"]
    counts = {"ha_messages": 0, "stream_messages": 0, "mqtt_messages": 0, "calls": 0, "call_errors": 0,
              "reboots": 0, "client_errors": 0}
    started = time.monotonic()
    total = args.minutes * 60

    async def dashboard(session: aiohttp.ClientSession) -> None:
        ws = await session.ws_connect(url.replace("http", "ws", 1) + "/api/websocket")
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        await ws.receive_json()
        await ws.send_json({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
        await ws.send_json({"id": 2, "type": "subscribe_entities"})
        msg_id = 2
        lights = ["light.living_room_ceiling_light"]
        last_states = 0.0

        async def reader() -> None:
            async for message in ws:
                data = json.loads(message.data)
                counts["ha_messages"] += len(data) if isinstance(data, list) else 1

        task = asyncio.get_running_loop().create_task(reader())
        try:
            while time.monotonic() - started < total:
                rate = 8.0 * args.call_scale * day_activity((time.monotonic() - started) / total)
                await asyncio.sleep(random.expovariate(rate))
                msg_id += 1
                if time.monotonic() - last_states > 10:  # a dashboard reloads now and then
                    last_states = time.monotonic()
                    await ws.send_json({"id": msg_id, "type": "get_states"})
                    continue
                await ws.send_json({"id": msg_id, "type": "call_service", "domain": "light",
                                    "service": "turn_on", "target": {"entity_id": random.choice(lights)},
                                    "service_data": {"brightness": random.randint(1, 255)}})
                counts["calls"] += 1
        finally:
            task.cancel()
            await ws.close()

    async def headset(session: aiohttp.ClientSession) -> None:
        ws = await session.ws_connect(url.replace("http", "ws", 1) + "/api/stream")
        await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": token}))
        await ws.receive_bytes()
        await ws.send_bytes(msgpack.packb({"type": "subscribe", "id": "all"}))
        entity_ids: list[str] = []

        async def reader() -> None:
            async for message in ws:
                data = msgpack.unpackb(message.data)
                counts["stream_messages"] += 1
                if data.get("type") == "snapshot":
                    entity_ids.extend(e for e in data["states"] if e.startswith("climate."))
                elif data.get("type") == "error":
                    counts["call_errors"] += 1

        task = asyncio.get_running_loop().create_task(reader())
        n = 0
        try:
            while time.monotonic() - started < total:
                rate = 4.0 * args.call_scale * day_activity((time.monotonic() - started) / total)
                await asyncio.sleep(random.expovariate(rate))
                if entity_ids:
                    n += 1
                    await ws.send_bytes(msgpack.packb({
                        "type": "call", "id": n, "entity_id": random.choice(entity_ids),
                        "command": "set_temperature", "args": {"temperature": random.randint(18, 26)}}))
                    counts["calls"] += 1
        finally:
            task.cancel()
            await ws.close()

    async def mqtt_reader() -> None:
        while time.monotonic() - started < total:
            try:
                async with aiomqtt.Client("127.0.0.1", int(os.environ["SOAK_MQTT_PORT"])) as client:
                    await client.subscribe("homeassistant/#")
                    await client.subscribe("qilu/#")
                    async for _ in client.messages:
                        counts["mqtt_messages"] += 1
                        if time.monotonic() - started > total:
                            return
            except aiomqtt.MqttError:
                await asyncio.sleep(1.0)  # the broker restarts during the soak

    async def reboots() -> None:
        while time.monotonic() - started < total:
            await asyncio.sleep(5.0)
            await random.choice(sims).restart()
            counts["reboots"] += 1

    async def guarded(coro_factory: Any) -> None:
        while time.monotonic() - started < total:
            try:
                await coro_factory()
            except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as err:
                counts["client_errors"] += 1
                print(f"load: client error {err!r}", file=sys.stderr)
                await asyncio.sleep(1.0)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(guarded(lambda: dashboard(session)), guarded(lambda: headset(session)),
                             mqtt_reader(), reboots())
    Path(args.ports_file + ".counts").write_text(json.dumps(counts))
    for sim in sims:
        await sim.stop()


# -- hub process ------------------------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _slope_per_hour(times: list[float], values: list[float]) -> float:
    n = len(times)
    if n < 3:
        return float("nan")
    mt, mv = sum(times) / n, sum(values) / n
    var = sum((t - mt) ** 2 for t in times)
    return 3600 * sum((t - mt) * (v - mv) for t, v in zip(times, values, strict=True)) / var if var else 0.0


def _bus_queue_max(hub: Any) -> int:
    from qilu_hub.bus import Subscription

    biggest = 0
    for listeners in hub.bus._listeners.values():
        for listener in listeners:
            owner = getattr(listener.callback, "__self__", None)
            if isinstance(owner, Subscription):
                biggest = max(biggest, owner.qsize())
    return biggest


async def _hub(args: argparse.Namespace) -> dict[str, Any]:
    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer
    from qilu_hub.discovery.models import MdnsInfo
    from qilu_hub.drivers.manager import DriverManager
    from qilu_hub.mqtt import MqttBridge, MqttSettings
    from qilu_hub.virtual import VirtualAppliances
    from tests.testbeds.mosquitto import Mosquitto

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = Mosquitto(work / "broker", tls=False)
    broker.start()
    ports_file = work / "ports.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SOAK_MQTT_PORT": str(broker.port)}
    hub = Hub(work / "config", {"recorder": {"max_size_mb": 32, "keep_days": 1}, "hub": {"name": "soak"}})
    manager = DriverManager(retry_initial=0.2, retry_max=2.0)
    hub.add_component(manager)
    hub.add_component(VirtualAppliances())
    hub.add_component(MqttBridge(MqttSettings(port=broker.port, hub_id="soak", reconnect_min=0.2,
                                              reconnect_max=2.0)))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    _, token = hub.tokens.create("soak", Scopes(admin=True))
    env["SOAK_TOKEN"] = token
    load = subprocess.Popen([sys.executable, __file__, "--load", "--ports-file", str(ports_file),
                             "--minutes", str(args.minutes), "--appliances", str(args.appliances),
                             "--tick", str(args.tick), "--time-scale", str(args.time_scale),
                             "--call-scale", str(args.call_scale)], env=env)
    try:
        while not ports_file.exists():
            if load.poll() is not None:
                raise RuntimeError("load process failed to start")
            await asyncio.sleep(0.2)
        sims = json.loads(ports_file.read_text())
        for sim in sims:
            info = MdnsInfo("_qoap._tcp.local.", f"{sim['txt']['id']}._qoap._tcp.local.", "127.0.0.1",
                            ("127.0.0.1",), sim["port"], sim["txt"])
            [(driver, appliance)] = manager.identify(info)
            await manager.async_adopt(driver.manifest.name, appliance)
        deadline = time.monotonic() + 120
        while sum(1 for r in manager.status() if r["state"] == "running") < len(sims):
            if time.monotonic() > deadline:
                raise RuntimeError("appliances did not all connect")
            await asyncio.sleep(0.5)
        Path(str(ports_file) + ".go").write_text(api.url)
        events = 0

        def count(_event: Any) -> None:
            nonlocal events
            events += 1

        hub.bus.listen("state_changed", count)
        samples: list[dict[str, Any]] = []
        started = time.monotonic()
        total = args.minutes * 60
        restarts_at = {total / 3, 2 * total / 3}
        last_events = 0
        loop = asyncio.get_running_loop()
        while (elapsed := time.monotonic() - started) < total:
            await asyncio.sleep(args.sample)
            for when in sorted(restarts_at):
                if elapsed >= when:
                    restarts_at.discard(when)
                    await loop.run_in_executor(None, broker.restart)
            if Path(str(ports_file) + ".counts").exists():
                break  # the load has finished and is stopping its appliances: that is not the hub's state
            samples.append({
                "t": round(time.monotonic() - started, 1),
                "rss_mb": round(_rss_kb() / 1024, 2),
                "fds": len(os.listdir("/proc/self/fd")),
                "tasks": len(asyncio.all_tasks()),
                "bus_listeners": hub.bus.listener_count(),
                "bus_queue_max": _bus_queue_max(hub),
                "ha_pending": api.pending_messages(),
                "stream_pending": sum(len(c._control) + sum(len(s.pending) for s in c.subs.values())
                                      for c in api.stream_fanout.connections),
                "events_per_s": round((events - last_events) / args.sample, 1),
                "running_appliances": sum(1 for r in manager.status() if r["state"] == "running"),
            })
            last_events = events
        load.wait(timeout=120)
        counts_file = Path(str(ports_file) + ".counts")
        counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    finally:
        if load.poll() is None:
            load.kill()
        await hub.async_stop()
        broker.stop()
    steady = samples[len(samples) // 5:]
    ts = [s["t"] for s in steady]
    result = {
        "benchmark": "soak",
        "minutes": args.minutes,
        "appliances": args.appliances,
        "load_settings": {"tick": args.tick, "time_scale": args.time_scale, "call_scale": args.call_scale},
        "samples": len(samples),
        "events_total": events,
        "events_per_s_median": sorted(s["events_per_s"] for s in samples)[len(samples) // 2] if samples else 0,
        "rss_mb_start": samples[0]["rss_mb"] if samples else None,
        "rss_mb_end": samples[-1]["rss_mb"] if samples else None,
        "rss_mb_max": max(s["rss_mb"] for s in samples) if samples else None,
        "slopes_per_hour": {key: round(_slope_per_hour(ts, [s[key] for s in steady]), 3)
                            for key in ("rss_mb", "fds", "tasks", "bus_listeners")},
        "rss_mb_slope_per_hour_last_half": round(_slope_per_hour(
            [s["t"] for s in samples[len(samples) // 2:]], [s["rss_mb"] for s in samples[len(samples) // 2:]]), 3),
        "max": {key: max(s[key] for s in samples) for key in ("fds", "tasks", "bus_listeners", "bus_queue_max",
                                                              "ha_pending", "stream_pending")} if samples else {},
        "min_running_appliances": min(s["running_appliances"] for s in samples) if samples else 0,
        "load": counts,
    }
    if args.plot:
        _plot(samples, Path(args.plot), result)
        result["plot"] = args.plot
    if args.samples_file:
        Path(args.samples_file).write_text(json.dumps(samples))
    return result


def _plot(samples: list[dict[str, Any]], path: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    panels = (("rss_mb", "RSS (MB)"), ("fds", "open fds"), ("tasks", "asyncio tasks"),
              ("bus_listeners", "bus listeners"), ("events_per_s", "state changes / s"),
              ("stream_pending", "subscriber queues"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 13), sharex=True)
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(minutes, [s[key] for s in samples], lw=1)
        if key == "stream_pending":
            ax.plot(minutes, [s["ha_pending"] for s in samples], lw=1, label="HA pending")
            ax.plot(minutes, [s["bus_queue_max"] for s in samples], lw=1, label="largest bus queue")
            ax.legend(["stream pending", "HA pending", "largest bus queue"], fontsize=7)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    slope = result["slopes_per_hour"]["rss_mb"]
    fig.suptitle(f"qilu-hub soak: {result['appliances']} appliances, {result['minutes']} min, "
                 f"RSS slope {slope} MB/h")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--appliances", type=int, default=200)
    parser.add_argument("--tick", type=float, default=0.5, help="simulator tick (s): sets the event rate")
    parser.add_argument("--time-scale", type=float, default=60.0,
                        help="simulated seconds per real second in the appliances (more physics, more changes)")
    parser.add_argument("--call-scale", type=float, default=1.0, help="multiplies the clients' call rates")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--plot", default="soak.png", help="PNG to write ('' for none)")
    parser.add_argument("--samples-file", default="", help="also write every sample as JSON here")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        asyncio.run(_load(args))
        return
    with contextlib.redirect_stdout(sys.stderr):  # only the JSON result goes to stdout
        result = asyncio.run(_hub(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
