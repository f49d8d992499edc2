"""Fan-out benchmark: state writes in the hub's process, one subscriber in another process over loopback.

    python bench/ws_fanout.py            # prints one JSON object

For each protocol (Home Assistant JSON plain, Home Assistant JSON with
``coalesce_messages``, the msgpack stream): events delivered per second at the
maximum write rate, and p50/p99/max latency at a paced 1,000 writes/s, latency
being the subscriber's ``perf_counter_ns`` at receipt minus the stamp the writer
put in the state's attributes (CLOCK_MONOTONIC is system-wide on Linux). Also the
RSS of a standard hub (recorder on) with 1,000 entities, the API up and a client
subscribed, and the time from spawning that process (bench/hub_process.py) to the
API answering ``/api/health``.

The throughput runs use a hub without the recorder, as the Home Assistant figures
it is compared with (http + api + websocket_api only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENTITIES = 1000
MAX_SECONDS = 3.0
PACED_SECONDS = 5.0
PACED_RATE = 1000
PHASE = "sensor.bench_phase"


# -- subscriber process ------------------------------------------------------------------

async def _client(url: str, token: str, mode: str) -> dict[str, Any]:
    import aiohttp
    import msgpack

    gc.disable()  # the measuring side must not add its own pauses
    clock = time.perf_counter_ns
    phase = "idle"
    counts = {"max": 0, "paced": 0}
    marks: dict[str, int] = {}
    cpu: dict[str, float] = {}
    latencies: list[int] = []

    def on_state(entity_id: str, attrs: dict[str, Any], value: Any, now: int) -> None:
        nonlocal phase
        if entity_id == PHASE:
            marks[value] = now
            cpu[value] = time.process_time()
            phase = {"max_start": "max", "paced_start": "paced"}.get(value, "idle")
            return
        if phase == "idle":
            return
        counts[phase] += 1
        if phase == "paced":
            latencies.append(now - attrs["t"])

    async with aiohttp.ClientSession() as session:
        if mode == "stream":
            ws = await session.ws_connect(url + "/api/stream", max_msg_size=0)
            await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": token}))
            await ws.receive()
            await ws.send_bytes(msgpack.packb({"type": "subscribe", "id": 1}))
            print("SUBSCRIBED", flush=True)
            unpackb = msgpack.unpackb
            while "done" not in marks:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                data = unpackb(msg.data)
                now = clock()
                if data.get("type") not in ("delta", "snapshot"):
                    continue
                states = data["states"]
                phase_state = states.pop(PHASE, None)
                for entity_id, st in states.items():
                    on_state(entity_id, st["a"], st["v"], now)
                if phase_state is not None:  # marks last: a delta holds the states written before it
                    on_state(PHASE, {}, phase_state["v"], now)
        else:
            ws = await session.ws_connect(url + "/api/websocket", max_msg_size=0)
            await ws.receive()
            await ws.send_str(json.dumps({"type": "auth", "access_token": token}))
            await ws.receive()
            if mode == "ha_coalesced":
                await ws.send_str(json.dumps({"id": 1, "type": "supported_features",
                                              "features": {"coalesce_messages": 1}}))
                await ws.receive()
            await ws.send_str(json.dumps({"id": 2, "type": "subscribe_events", "event_type": "state_changed"}))
            await ws.receive()
            print("SUBSCRIBED", flush=True)
            loads = json.loads
            while "done" not in marks:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = loads(msg.data)
                now = clock()
                for item in data if isinstance(data, list) else (data,):
                    new = item["event"]["data"]["new_state"]
                    on_state(new["entity_id"], new["attributes"], new["state"], now)
        await ws.close()
    # A client that cannot keep up at the maximum rate is cut off, as Home Assistant cuts it off: reported as
    # such (no figure for a phase it did not see end), not as a crash of the benchmark.
    cut_off = "done" not in marks
    max_seen = "max_start" in marks and "max_end" in marks
    max_ns = marks["max_end"] - marks["max_start"] if max_seen else 0
    worst_at = max(range(len(latencies)), key=latencies.__getitem__) if latencies else None
    latencies.sort()
    ms = 1e-6
    return {
        "cut_off": cut_off,
        "events_per_s_max": round(counts["max"] / (max_ns / 1e9)) if max_seen else None,
        "client_cpu_us_per_event": round((cpu["max_end"] - cpu["max_start"]) / max(counts["max"], 1) * 1e6, 2)
        if max_seen else None,
        "paced_events": counts["paced"],
        "latency_ms_p50": round(latencies[len(latencies) // 2] * ms, 3) if latencies else None,
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * ms, 3) if latencies else None,
        "latency_ms_max": round(latencies[-1] * ms, 3) if latencies else None,
        "latency_ms_mean": round(statistics.fmean(latencies) * ms, 3) if latencies else None,
        "latency_worst_sample_index": worst_at,
    }


# -- hub side -----------------------------------------------------------------------------

async def _run_protocol(mode: str) -> dict[str, Any]:
    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer

    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
        hub = Hub(tmp, recorder=False)
        api = ApiServer("127.0.0.1", 0)
        hub.add_component(api)
        await hub.async_start()
        _, token = hub.tokens.create("bench", Scopes(admin=True))
        states = hub.states
        clock = time.perf_counter_ns
        ids = [f"sensor.bench_{i}" for i in range(ENTITIES)]
        for entity_id in ids:
            states.async_set(entity_id, 0, {"t": clock()})
        states.async_set(PHASE, "idle")
        gc.collect()

        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", mode, "--url", api.url, "--token", token,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        await proc.stdout.readline()  # SUBSCRIBED
        await asyncio.sleep(0.5)

        # Maximum rate: write as fast as the subscriber drains (a plain HA client must not exceed the pending
        # cap, in messages or in bytes, so the writer yields while its queue is long: 1,500 of these ~700-byte
        # events are nearly the 1 MiB a client behind a full socket may have queued).
        states.async_set(PHASE, "max_start")
        writes = 0
        cpu0 = time.process_time()
        deadline = time.monotonic() + MAX_SECONDS
        pending = api.pending_messages

        def queued_bytes() -> int:
            return sum(conn.pending_bytes() for conn in api.ha_connections)

        byte_cap = api.pending_share // 2
        while time.monotonic() < deadline:
            for entity_id in ids[writes % 10 * 100: writes % 10 * 100 + 100]:
                states.async_set(entity_id, writes, {"t": clock()})
                writes += 1
            await asyncio.sleep(0)
            while pending() > 1500 or queued_bytes() > byte_cap:
                await asyncio.sleep(0.0005)
        max_writes_per_s = writes / MAX_SECONDS
        hub_cpu_us = (time.process_time() - cpu0) / writes * 1e6
        states.async_set(PHASE, "max_end")
        await asyncio.sleep(2.0)  # let the subscriber drain what the socket buffers still hold

        # Paced: 1,000 writes/s, one entity each, spread over the entities.
        loop = asyncio.get_running_loop()
        pauses: list[float] = []
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        states.async_set(PHASE, "paced_start")
        await asyncio.sleep(0.2)
        start = loop.time()
        n = int(PACED_SECONDS * PACED_RATE)
        for i in range(n):
            delay = start + i / PACED_RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            states.async_set(ids[i % ENTITIES], i, {"t": clock()})
        await asyncio.sleep(0.3)
        gc.callbacks.remove(on_gc)
        states.async_set(PHASE, "paced_end")
        await asyncio.sleep(0.3)
        states.async_set(PHASE, "done")
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        result["hub_writes_per_s_max"] = round(max_writes_per_s)
        result["hub_cpu_us_per_write"] = round(hub_cpu_us, 2)
        result["hub_gc_collections_paced"] = len(pauses)
        result["hub_gc_pause_ms_max_paced"] = round(max(pauses, default=0.0) * 1000, 3)
        await hub.async_stop()

        return result


# -- footprint: RSS and start-up ---------------------------------------------------------

def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _footprint(runs: int = 5) -> dict[str, Any]:
    """As run here (bytecode as the environment has it: with PYTHONDONTWRITEBYTECODE set, as on the project's
    machines, the hub's own modules are compiled from source at every start) and with bytecode cached, as an
    installed hub has it (pip writes it at install): a private pycache prefix, filled by one uncounted run."""
    plain = await _footprint_runs(runs, dict(os.environ))
    with tempfile.TemporaryDirectory(prefix="qilu-pyc-") as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        await _footprint_runs(1, env)  # compiles everything into the prefix
        cached = await _footprint_runs(runs, env)
    dont_write = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    return {**plain, "bytecode_cached": cached, "pythondontwritebytecode": dont_write}


async def _footprint_runs(runs: int, base_env: dict[str, str]) -> dict[str, Any]:
    import aiohttp

    start_times, rss, floor_times = [], [], []
    script = str(Path(__file__).with_name("hub_process.py"))
    env = {**base_env, "PYTHONPATH": os.pathsep.join([str(ROOT), base_env.get("PYTHONPATH", "")])}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
            async with aiohttp.ClientSession() as session:
                t0 = time.perf_counter()
                proc = subprocess.Popen([sys.executable, script, tmp], stdout=subprocess.PIPE, text=True, env=env)
                try:
                    assert proc.stdout is not None
                    url = proc.stdout.readline().split()[1]
                    async with session.get(url + "/api/health") as resp:
                        assert resp.status == 200
                    start_times.append(time.perf_counter() - t0)
                    token = proc.stdout.readline().split()[1]
                    ws = await session.ws_connect(url + "/api/websocket", max_msg_size=0)
                    await ws.receive()
                    await ws.send_str(json.dumps({"type": "auth", "access_token": token}))
                    await ws.receive()
                    await ws.send_str(json.dumps({"id": 1, "type": "get_states"}))
                    states = json.loads((await ws.receive()).data)["result"]
                    assert len(states) >= ENTITIES
                    await ws.send_str(json.dumps({"id": 2, "type": "subscribe_events"}))
                    await ws.receive()
                    await asyncio.sleep(0.2)
                    rss.append(_rss_kib(proc.pid) / 1024)
                    await ws.close()
                finally:
                    proc.terminate()
                    proc.wait()
        # The floor under it, in the same rounds: a fresh interpreter that imports asyncio and aiohttp's server.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import asyncio, aiohttp.web"], env=env, check=True)
        floor_times.append(time.perf_counter() - t0)
    return {
        "start_to_api_ready_s_median": round(statistics.median(start_times), 3),
        "start_to_api_ready_s_runs": [round(t, 3) for t in start_times],
        "floor_import_asyncio_aiohttp_web_s_median": round(statistics.median(floor_times), 3),
        "floor_import_asyncio_aiohttp_web_s_runs": [round(t, 3) for t in floor_times],
        "rss_mib_1000_entities_median": round(statistics.median(rss), 1),
        "rss_mib_runs": [round(r, 1) for r in rss],
    }


async def _main(runs: int, only: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "entities": ENTITIES, "max_seconds": MAX_SECONDS, "paced_rate": PACED_RATE, "paced_seconds": PACED_SECONDS,
        "runs": runs, "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
    }
    for mode in ("ha_plain", "ha_coalesced", "stream"):
        if only and mode not in only:
            continue
        per_run = [await _run_protocol(mode) for _ in range(runs)]
        merged: dict[str, Any] = {}
        for key in per_run[0]:
            values = [r[key] for r in per_run if r[key] is not None]
            merged[key] = statistics.median(values) if values else None
        merged["runs"] = per_run
        results[mode] = merged
    if not only or "footprint" in only:
        results.update(await _footprint())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per protocol (medians are reported)")
    parser.add_argument("--only", action="append", default=[],
                        choices=("ha_plain", "ha_coalesced", "stream", "footprint"), help="run only these parts")
    parser.add_argument("--client", choices=("ha_plain", "ha_coalesced", "stream"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_client(args.url, args.token, args.client))), flush=True)
    else:
        print(json.dumps(asyncio.run(_main(args.runs, args.only)), indent=2))


if __name__ == "__main__":
    main()
