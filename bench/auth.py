"""Cost of authentication work per request, and of the defences against log flooding.

Prints JSON (medians of --runs runs):
* ``verify_us``: TokenStore.verify of a cached token, last_used throttled to once a minute (as shipped);
* ``verify_write_each_us``: the same with a last_used write on every call (what throttling avoids);
* ``garbage_req_per_s`` / ``garbage_log_lines``: malformed HTTP requests a real API server refuses per
  second over fresh loopback sockets, and the log lines they cost.
Usage: python bench/auth.py [--runs R] [--verifies N] [--garbage N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from qilu_hub import Hub
from qilu_hub.api import ApiServer
from qilu_hub.storage import RegistryStore
from qilu_hub.tokens import TokenStore

BAD_REQUEST = b"GET / HTTP/1.1\r\nHost: hub\r\nX-Bad: a\x00b\r\n\r\n"


def bench_verify(n: int, touch_interval: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = RegistryStore(Path(tmp) / "registry.db")
        tokens = TokenStore(store)
        tokens.touch_interval = touch_interval
        _, secret = tokens.create("bench")
        tokens.verify(secret)
        start = time.perf_counter()
        for _ in range(n):
            tokens.verify(secret)
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed / n * 1e6


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1


async def bench_garbage(n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub(tmp, {"recorder": {"commit_interval": 1.0}}, recorder=False)
        api = ApiServer("127.0.0.1", 0)
        hub.add_component(api)
        await hub.async_start()
        counter = Count()
        root = logging.getLogger()
        root.addHandler(counter)
        try:
            start = time.perf_counter()
            for _ in range(n):
                reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
                writer.write(BAD_REQUEST)
                await reader.read()
                writer.close()
            elapsed = time.perf_counter() - start
        finally:
            root.removeHandler(counter)
            await hub.async_stop()
    return n / elapsed, counter.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--verifies", type=int, default=20000)
    parser.add_argument("--garbage", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.INFO)
    throttled = [bench_verify(args.verifies, 60.0) for _ in range(args.runs)]
    each = [bench_verify(max(1, args.verifies // 20), 0.0) for _ in range(args.runs)]
    garbage = [asyncio.run(bench_garbage(args.garbage)) for _ in range(args.runs)]
    print(json.dumps({
        "runs": args.runs,
        "verify_us": round(statistics.median(throttled), 2),
        "verify_write_each_us": round(statistics.median(each), 1),
        "garbage_requests": args.garbage,
        "garbage_req_per_s": round(statistics.median(g[0] for g in garbage)),
        "garbage_log_lines": max(g[1] for g in garbage),
    }))


if __name__ == "__main__":
    main()
