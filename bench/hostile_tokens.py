"""What a stale or hostile token costs: revocation latency, the scoped-cache flood, verify() cost.

Prints JSON:
* ``revoke_in_process_ms``: from ``TokenStore.revoke`` in the hub's process to both of the token's open
  sessions (a Home Assistant WebSocket and a stream) seen closed by their clients (median of --runs);
* ``revoke_cli_ms``: the same from the commit of a revocation by another process (wall-clock time reported
  by that process, which runs the CLI's code); ``revoke_cli_process_ms`` is the run time of a real
  ``qilu-hub token revoke`` process (Python start-up included);
  ``rest_refused_after_cli``: whether the first REST request after that exit was refused (the token's
  verdict was cached by a request just before the revoke);
* ``flood_rss_mb``: resident memory of this process (hub and clients) before and after 1,000 stream calls
  naming 100 kB invented entity ids from an area-scoped token, with the area cache's size after it;
* ``verify_us``: TokenStore.verify of a cached token (it now asks SQLite for data_version each time), and
  ``rest_request_us``, a whole authenticated REST request over loopback, for scale.
A wait the hub never ends (older code) is cut at --timeout seconds and reported as null.
Usage: python bench/hostile_tokens.py [--runs R] [--calls N] [--id-bytes B] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.const import REGISTRY_DB
from qilu_hub.storage import RegistryStore
from qilu_hub.tokens import TokenStore
from qilu_hub.virtual import VirtualAppliances

# Revokes a token as ``qilu-hub token revoke`` does, when told to, and prints the wall-clock time of the commit.
_REVOKER = """
import sys, time
from qilu_hub.storage import RegistryStore
from qilu_hub.tokens import TokenStore
store = RegistryStore(sys.argv[1])
tokens = TokenStore(store)
print("ready", flush=True)
sys.stdin.readline()
tokens.revoke(sys.argv[2])
print(time.time(), flush=True)
store.close()
"""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _start(directory: Path) -> tuple[Hub, ApiServer]:
    hub = Hub(directory, load_config(directory), recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=10**6))
    hub.add_component(api)
    await hub.async_start()
    return hub, api


async def _sessions(api: ApiServer, client: aiohttp.ClientSession,
                    secret: str) -> list[aiohttp.ClientWebSocketResponse]:
    base = api.url.replace("http", "ws", 1)
    ha = await client.ws_connect(base + "/api/websocket")
    await ha.receive_json()
    await ha.send_json({"type": "auth", "access_token": secret})
    assert (await ha.receive_json())["type"] == "auth_ok"
    stream = await client.ws_connect(base + "/api/stream")
    await stream.send_bytes(msgpack.packb({"type": "auth", "access_token": secret}))
    assert msgpack.unpackb(await stream.receive_bytes())["type"] == "auth_ok"
    return [ha, stream]


async def _until_closed(sockets: list[aiohttp.ClientWebSocketResponse], start: float, timeout: float) -> float | None:
    async def one(ws: aiohttp.ClientWebSocketResponse) -> None:
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                               aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            pass

    try:
        await asyncio.wait_for(asyncio.gather(*(one(ws) for ws in sockets)), timeout)
    except TimeoutError:
        for ws in sockets:
            await ws.close()
        return None
    return (time.perf_counter() - start) * 1000


def _median(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return round(statistics.median(done), 1) if len(done) == len(values) else None


async def bench_revoke(runs: int, timeout: float) -> dict[str, Any]:
    in_process: list[float | None] = []
    from_cli: list[float | None] = []
    cli_runs: list[float] = []
    refused: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp:
        hub, api = await _start(Path(tmp))
        async with aiohttp.ClientSession() as client:
            for _ in range(runs):
                token, secret = hub.tokens.create("bench")
                sockets = await _sessions(api, client, secret)
                start = time.perf_counter()
                hub.tokens.revoke(token.id)
                in_process.append(await _until_closed(sockets, start, timeout))

                # Another process revokes (the CLI's code, started beforehand so that Python's start-up is not
                # counted) and reports the wall-clock time of its commit; no request reaches the hub meanwhile,
                # so this is the sessions' own watch noticing the other process's commit.
                token, secret = hub.tokens.create("bench")
                sockets = await _sessions(api, client, secret)
                other = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _REVOKER, str(Path(tmp) / REGISTRY_DB), token.id,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
                assert other.stdin is not None and other.stdout is not None
                assert (await other.stdout.readline()).strip() == b"ready"
                other.stdin.write(b"go\n")
                await other.stdin.drain()
                committed = float((await other.stdout.readline()).decode())
                closed = await _until_closed(sockets, time.perf_counter(), timeout)
                from_cli.append(None if closed is None else (time.time() - committed) * 1000)
                await other.wait()

                # The real command line; the token's verdict is cached by a request just before.
                token, secret = hub.tokens.create("bench")
                async with client.get(api.url + "/api/", headers={"Authorization": f"Bearer {secret}"}) as r:
                    assert r.status == 200
                began = time.perf_counter()
                cli = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "qilu_hub", "--config", tmp, "token", "revoke", token.id,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await cli.wait()
                cli_runs.append((time.perf_counter() - began) * 1000)
                async with client.get(api.url + "/api/", headers={"Authorization": f"Bearer {secret}"}) as r:
                    refused.append(r.status == 401)
        await hub.async_stop()
    return {"revoke_in_process_ms": _median(in_process), "revoke_cli_ms": _median(from_cli),
            "revoke_cli_process_ms": round(statistics.median(cli_runs)), "rest_refused_after_cli": all(refused)}


async def bench_flood(calls: int, id_bytes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        hub, api = await _start(Path(tmp))
        _, kitchen = hub.tokens.create("kitchen", Scopes(areas=frozenset({"kitchen"})))
        before = _rss_mb()
        async with aiohttp.ClientSession() as client:
            base = api.url.replace("http", "ws", 1)
            streams = []
            for _ in range(calls // 300 + 1):  # each within the stream's per-connection rate limit
                ws = await client.ws_connect(base + "/api/stream", max_msg_size=0)
                await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": kitchen}))
                await ws.receive_bytes()
                streams.append(ws)
            for i in range(calls):
                ws = streams[i % len(streams)]
                entity_id = f"light.{i:06d}" + "x" * id_bytes
                await ws.send_bytes(msgpack.packb({"type": "call", "id": i, "entity_id": entity_id,
                                                   "command": "turn_on"}))
                await ws.receive_bytes()
            after = _rss_mb()  # sessions still open: what they made the hub keep
            areas = api.areas
            cached = areas.size() if hasattr(areas, "size") else len(areas._cache)  # older code had no size()
            for ws in streams:
                await ws.close()
        await hub.async_stop()
    return {"flood_calls": calls, "flood_id_bytes": id_bytes, "flood_rss_mb": {"before": round(before, 1),
            "after": round(after, 1)}, "flood_area_cache_entries": cached}


async def bench_rest(n: int) -> float:
    """Microseconds per authenticated ``GET /api/`` over one keep-alive loopback connection: verify()'s share."""
    with tempfile.TemporaryDirectory() as tmp:
        hub, api = await _start(Path(tmp))
        _, secret = hub.tokens.create("bench")
        headers = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession() as client:
            start = time.perf_counter()
            for _ in range(n):
                async with client.get(api.url + "/api/", headers=headers) as r:
                    await r.read()
            elapsed = time.perf_counter() - start
        await hub.async_stop()
    return elapsed / n * 1e6


def bench_verify(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = RegistryStore(Path(tmp) / "registry.db")
        tokens = TokenStore(store)
        _, secret = tokens.create("bench")
        tokens.verify(secret)
        start = time.perf_counter()
        for _ in range(n):
            tokens.verify(secret)
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--id-bytes", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    result.update(await bench_flood(args.calls, args.id_bytes))  # first: a fresh process's memory
    result.update(await bench_revoke(args.runs, args.timeout))
    result["verify_us"] = round(statistics.median(bench_verify(100_000) for _ in range(args.runs)), 2)
    result["rest_request_us"] = round(await bench_rest(2000))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
