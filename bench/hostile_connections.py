"""Hostile connections against a hub with the default limits: what one address and all together may hold.

    python bench/hostile_connections.py          # prints one JSON object

The hub runs in its own process (this script with ``--hub``), with the default ``hub:`` options,
and is attacked over loopback from many source addresses (127.0.0.2, ...; all of 127/8 is
loopback on Linux). Reports: connections one address holds before it is refused, connections
all addresses together hold before a newcomer is refused (and the cap the hub derived from its
open-file limit), the hub's open files before and at the peak, how long silent, slowloris and
keep-alive-idle connections live, and how many unauthenticated WebSockets one address holds and
how long they live.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MAX_ADDRESSES = 120  # source addresses tried for the overall cap (bounded)
IDLE_SAMPLES = 40  # connections per idle kind whose lifetime is measured
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


# -- hub side -----------------------------------------------------------------------------

async def _hub(config_dir: str) -> None:
    from qilu_hub import Hub
    from qilu_hub.api import ApiServer

    hub = Hub(config_dir, recorder=False)
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"READY {api.url} {api.connections.max_total} {soft}", flush=True)
    await stop.wait()
    await hub.async_stop()


# -- attacker side --------------------------------------------------------------------------

def _address(i: int) -> str:
    return f"127.0.{2 + i // 250}.{2 + i % 250}"


async def _open(port: int, source: str) -> Conn | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
    except (OSError, TimeoutError):
        return None


async def _served(port: int, source: str) -> Conn | None:
    """A connection that answered one keep-alive /api/health request, or None when the hub refused it."""
    conn = await _open(port, source)
    if conn is None:
        return None
    reader, writer = conn
    try:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await asyncio.wait_for(reader.readexactly(length), 5)
        return conn
    except (OSError, TimeoutError, asyncio.IncompleteReadError, StopIteration):
        writer.close()
        return None


async def _fill(port: int, source: str, limit: int) -> list[Conn]:
    held: list[Conn] = []
    while len(held) < limit:
        conn = await _served(port, source)
        if conn is None:
            break
        held.append(conn)
    return held


async def _lifetime(reader: asyncio.StreamReader, since: float, bound: float) -> float | None:
    """Seconds from ``since`` until the hub closed the connection (None: still open after ``bound``)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(bound):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return round(loop.time() - since, 2)


def _summary(values: list[float | None]) -> dict[str, Any]:
    closed = [v for v in values if v is not None]
    return {"n": len(values), "closed": len(closed),
            "median_s": statistics.median(closed) if closed else None, "max_s": max(closed) if closed else None}


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _ws_upgrade(port: int, source: str) -> Conn | None:
    conn = await _open(port, source)
    if conn is None:
        return None
    reader, writer = conn
    writer.write(b"GET /api/websocket HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        status = await asyncio.wait_for(reader.readline(), 5)
    except (OSError, TimeoutError):
        status = b""
    if not status.startswith(b"HTTP/1.1 101"):
        writer.close()
        return None
    return conn


async def _attack(port: int, pid: int, budget: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = {"hub_connection_cap": budget, "hub_open_files_idle": _fds(pid)}
    held: list[Conn] = []
    try:
        # One address, then more and more addresses, each filling what it gets, until a newcomer is refused.
        held += await _fill(port, _address(0), 10_000)
        results["connections_held_per_address"] = len(held)
        newcomer_refused_at = None
        for i in range(1, MAX_ADDRESSES):
            got = await _fill(port, _address(i), 10_000)
            held += got
            if not got:
                newcomer_refused_at = i
                break
        results["connections_held_overall"] = len(held)
        results["addresses_used_before_a_newcomer_was_refused"] = newcomer_refused_at
        results["hub_open_files_at_peak"] = _fds(pid)
    finally:
        for _, writer in held:
            writer.close()
    await asyncio.sleep(1.0)  # let the hub see them go

    # Lifetimes, measured together: silent, slowloris, keep-alive idle, unauthenticated WebSockets.
    start = loop.time()
    silent = [c for c in await asyncio.gather(*(_open(port, _address(200 + i % 4)) for i in range(IDLE_SAMPLES)))
              if c is not None]
    slow = [c for c in await asyncio.gather(*(_open(port, _address(210 + i % 4)) for i in range(IDLE_SAMPLES)))
            if c is not None]
    idle = [c for c in [await _served(port, _address(220 + i % 4)) for i in range(IDLE_SAMPLES)] if c is not None]
    websockets = [c for c in [await _ws_upgrade(port, _address(230)) for _ in range(20)] if c is not None]
    results["unauthenticated_websockets_per_address"] = len(websockets)
    for _, writer in slow:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n")

    async def trickle() -> None:
        for i in range(120):  # bounded: 60 s
            for _, writer in slow:
                with contextlib.suppress(OSError):
                    writer.write(f"X-Slow-{i}: 1\r\n".encode())
            await asyncio.sleep(0.5)

    task = loop.create_task(trickle())
    try:
        bound = 60.0
        lifetimes = await asyncio.gather(
            asyncio.gather(*(_lifetime(r, start, bound) for r, _ in silent)),
            asyncio.gather(*(_lifetime(r, start, bound) for r, _ in slow)),
            asyncio.gather(*(_lifetime(r, start, bound) for r, _ in idle)),
            asyncio.gather(*(_lifetime(r, start, bound) for r, _ in websockets)))
    finally:
        task.cancel()
        for _, writer in silent + slow + idle + websockets:
            writer.close()
    for name, values in zip(("silent", "slowloris", "keepalive_idle", "unauthenticated_websocket"), lifetimes,
                            strict=True):
        results[f"lifetime_{name}"] = _summary(list(values))
    return results


async def _main() -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):  # the attacker holds a socket per connection too
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--hub", tmp, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
            url, budget, hub_files = ready[1], int(ready[2]), int(ready[3])
            results = await _attack(int(url.rsplit(":", 1)[1]), proc.pid, budget)
            results["hub_open_file_limit"] = hub_files
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    from qilu_hub.api import limits

    results["defaults"] = {
        "max_connections": limits.MAX_TCP_CONNECTIONS,
        "max_connections_per_address": limits.MAX_TCP_CONNECTIONS_PER_ADDRESS,
        "idle_timeout": limits.IDLE_TIMEOUT,
        "websocket_auth_timeout": limits.AUTH_TIMEOUT,
        "max_unauthenticated_per_address": limits.MAX_UNAUTHENTICATED_PER_ADDRESS,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hub", metavar="CONFIG_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hub:
        asyncio.run(_hub(args.hub))
        return
    print(json.dumps(asyncio.run(_main()), indent=2))


if __name__ == "__main__":
    main()
