"""Where a hub's resident memory goes: RSS after each stage of start-up, and what the imports hold.

    python bench/memory_breakdown.py [--runs 3]      # prints one JSON object

Each run is a fresh process (``--stage-child``) that reports VmRSS (``/proc/self/status``) after: the bare
interpreter, importing the core (``qilu_hub``), a started bare core (recorder on, no API), 1,000 entities
with Home Assistant's attribute shape, importing the API (aiohttp), the API listening, and a client's
``get_states`` + ``subscribe_events`` + ``subscribe_entities`` + stream subscription (which fill the per-State
JSON and msgpack caches). It also reports the RSS of the mapped files (shared libraries) versus anonymous
memory, Python's own traced allocations grouped by the package that loaded them, and the modules imported.
Medians over runs are reported per stage.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTITIES = 1000


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _mapped() -> dict[str, float]:
    """RSS per mapping kind: anonymous + heap (Python objects, malloc) versus each shared library."""
    totals: dict[str, float] = {}
    current = "[anon]"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                current = parts[5] if len(parts) > 5 else "[anon]"
            elif parts and parts[0] == "Rss:":
                key = current if current.startswith("[") else Path(current).name
                totals[key] = totals.get(key, 0.0) + int(parts[1]) / 1024
    return {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v >= 0.1}


def _child(trace: bool) -> dict[str, Any]:
    stages: dict[str, float] = {"interpreter": _rss_mib()}
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    import asyncio
    import tempfile

    stages["asyncio"] = _rss_mib()
    import qilu_hub

    stages["import_core"] = _rss_mib()

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="qilu-mem-") as tmp:
            hub = qilu_hub.Hub(tmp)
            await hub.async_start()
            stages["core_started"] = _rss_mib()
            for i in range(ENTITIES):
                hub.states.async_set(f"sensor.meter_{i}", float(i), {
                    "unit_of_measurement": "W", "device_class": "power", "friendly_name": f"Meter {i}"})
            stages["core_1000_entities"] = _rss_mib()
            from qilu_hub.api import ApiServer

            stages["import_api"] = _rss_mib()
            api = ApiServer("127.0.0.1", 0)
            hub.add_component(api)
            await api.async_start(hub)
            stages["api_listening"] = _rss_mib()
            _, token = hub.tokens.create("mem", qilu_hub.Scopes(admin=True))
            await _clients(api.url, token)
            stages["clients_subscribed"] = _rss_mib()
            extra: dict[str, Any] = {"mapped_mib": _mapped(), "modules": len(sys.modules)}
            if trace:
                extra["traced_by_package_kib"] = _traced()
            await hub.async_stop()
            return extra

    extra = asyncio.run(run())
    return {"stages_mib": {k: round(v, 2) for k, v in stages.items()}, **extra}


async def _clients(url: str, token: str) -> None:
    """Raw sockets in this process would add aiohttp's client side; a subprocess keeps it out of the figure."""
    code = (
        "import asyncio, json, sys, aiohttp, msgpack\n"
        "async def main(url, token):\n"
        "  async with aiohttp.ClientSession() as s:\n"
        "    ws = await s.ws_connect(url + '/api/websocket', max_msg_size=0); await ws.receive()\n"
        "    await ws.send_str(json.dumps({'type': 'auth', 'access_token': token})); await ws.receive()\n"
        "    for i, t in ((1, 'get_states'), (2, 'subscribe_events'), (3, 'subscribe_entities')):\n"
        "      await ws.send_str(json.dumps({'id': i, 'type': t})); await ws.receive()\n"
        "    await ws.receive()\n"  # subscribe_entities' first event
        "    st = await s.ws_connect(url + '/api/stream', max_msg_size=0)\n"
        "    await st.send_bytes(msgpack.packb({'type': 'auth', 'access_token': token})); await st.receive()\n"
        "    await st.send_bytes(msgpack.packb({'type': 'subscribe', 'id': 1})); await st.receive()\n"
        "    print('OK', flush=True); sys.stdin.readline()\n"
        "asyncio.run(main(sys.argv[1], sys.argv[2]))\n"
    )
    import asyncio

    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, url, token,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if line.strip() != b"OK":
        raise RuntimeError("client failed")
    await asyncio.sleep(0.2)
    proc.stdin.write(b"\n")
    await proc.stdin.drain()
    await proc.wait()


def _traced() -> dict[str, int]:
    import tracemalloc

    totals: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        name = stat.traceback[0].filename
        if "site-packages/" in name:
            key = name.split("site-packages/")[1].split("/")[0]
        elif "<frozen importlib" in name:
            key = "code objects (importlib)"
        elif "/lib/python3" in name:
            key = "stdlib"
        else:
            key = "qilu_hub"
        totals[key] = totals.get(key, 0) + stat.size
    return {k: v // 1024 for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v >= 32 * 1024}


def _where() -> str:
    """The tree measured (PYTHONPATH picks it: compare an old checkout by pointing it there)."""
    import importlib.util

    spec = importlib.util.find_spec("qilu_hub")
    if spec is None or not spec.origin:
        return "?"
    try:  # results are committed: name the tree relative to the project root, never a machine path
        return str(Path(spec.origin).resolve().parent.relative_to(ROOT))
    except ValueError:
        return "installed package (outside the project)"


def main() -> None:
    import argparse
    import json
    import statistics
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for i in range(args.runs + 1):  # the last run traces allocations (tracemalloc itself costs memory)
        out = subprocess.run([sys.executable, __file__, "--stage-child", *(["--trace"] if i == args.runs else [])],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    plain, traced = runs[:-1], runs[-1]
    stages = {k: round(statistics.median(r["stages_mib"][k] for r in plain), 2) for k in plain[0]["stages_mib"]}
    steps: dict[str, float] = {}
    previous = 0.0
    for key, value in stages.items():
        steps[key] = round(value - previous, 2)
        previous = value
    print(json.dumps({
        "qilu_hub_from": _where(), "runs": args.runs, "entities": ENTITIES, "python": sys.version.split()[0],
        "rss_mib_median_by_stage": stages, "rss_mib_added_by_stage": steps,
        "rss_mib_runs": [r["stages_mib"]["clients_subscribed"] for r in plain],
        "mapped_mib_last_run": plain[-1]["mapped_mib"], "modules_loaded": plain[-1]["modules"],
        "traced_python_allocations_kib": traced["traced_by_package_kib"],
    }, indent=2))


if __name__ == "__main__":
    if "--stage-child" in sys.argv:  # no argparse or json before the first reading: they are not the hub's
        result = _child("--trace" in sys.argv)
        import json

        print(json.dumps(result), flush=True)
    else:
        main()
