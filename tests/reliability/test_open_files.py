"""A hub process with a low open-file limit under a flood of idle and slow connections (slowloris).

The hub runs in its own process (tests/reliability/api_hub_child.py) started with RLIMIT_NOFILE
lowered, so that the flood is larger than the files it may open; the test process opens the
flood from several loopback addresses (127.0.0.2, ...) and checks from 127.0.0.1 that the hub
still answers, that it closes what idles, and that its log stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.testbeds.raw_sockets import closed_by_hub

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("api_hub_child.py")
FLOOD_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 10)]


@dataclass
class HubProcess:
    proc: asyncio.subprocess.Process
    url: str
    token: str
    soft_limit: int
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    async def line(self) -> str:
        assert self.proc.stdout is not None
        return (await asyncio.wait_for(self.proc.stdout.readline(), 10)).decode()


@contextlib.asynccontextmanager
async def hub_process(tmp_path: Path, soft: int, hard: int, **options: Any) -> AsyncIterator[HubProcess]:
    def limit_files() -> None:  # in the child, before the hub starts: as `prlimit --nofile=soft:hard` would
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    log = tmp_path / "hub.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), str(tmp_path / "config"), json.dumps(options),
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, stderr=stderr,
            preexec_fn=limit_files)
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
        assert ready and ready[0] == "READY", log.read_text()
        yield HubProcess(proc, ready[1], ready[2], int(ready[3]), log)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def open_quietly(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 3)
    except (OSError, TimeoutError):
        return None


async def test_a_slowloris_flood_beyond_the_open_file_limit_leaves_the_hub_serving(tmp_path: Path) -> None:
    # The hub may open at most 256 files; the flood is 400 connections from 8 addresses, half of them
    # sending their headers a line at a time. The soft limit starts at 128 as on a default Linux login.
    async with hub_process(tmp_path, soft=128, hard=256, idle_timeout=2.0) as hub:
        flood = [conn for conn in await asyncio.gather(
            *(open_quietly(hub.port, FLOOD_ADDRESSES[i % len(FLOOD_ADDRESSES)]) for i in range(400)))
            if conn is not None]
        slow = flood[::2]
        for _, writer in slow:
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n")

        async def send_slowly() -> None:
            for i in range(60):  # bounded: 30 s at most
                for _, writer in slow:
                    with contextlib.suppress(OSError):
                        writer.write(f"X-Slow-{i}: still here\r\n".encode())
                await asyncio.sleep(0.5)

        trickle = asyncio.get_running_loop().create_task(send_slowly())
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(hub.url + "/api/health") as resp:
                    assert resp.status == 200
                headers = {"Authorization": f"Bearer {hub.token}"}
                async with session.get(hub.url + "/api/states", headers=headers) as resp:
                    assert resp.status == 200
            # Everything the flood holds is closed by the hub: silent, slow and refused alike.
            still_open = [r for r, _ in flood if not await closed_by_hub(r, within=15)]
            assert still_open == []
        finally:
            trickle.cancel()
            for _, writer in flood:
                writer.close()
    lines = hub.log_lines()  # the hub has stopped: its whole log
    assert not any("Traceback" in line for line in lines), "\n".join(lines[:40])
    assert len(lines) < 40, "\n".join(lines[:40])  # refusals: a line per address, not per connection
    assert hub.soft_limit == 256  # the hub raised its soft limit to the hard one


async def test_running_out_of_files_costs_one_log_line_and_the_hub_recovers(tmp_path: Path) -> None:
    async with hub_process(tmp_path, soft=256, hard=256) as hub:
        assert hub.proc.pid is not None
        os.kill(hub.proc.pid, signal.SIGUSR1)  # something in the hub used up every file
        assert (await hub.line()).startswith("HOGGED")
        flood = [conn for conn in await asyncio.gather(*(open_quietly(hub.port, FLOOD_ADDRESSES[0])
                                                         for _ in range(50))) if conn is not None]
        try:
            for _ in range(100):  # bounded: until asyncio has failed to accept at least once
                if any("accept" in line for line in hub.log_lines()):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.5)  # asyncio retries every second: let it fail a few more times
        finally:
            for _, writer in flood:
                writer.close()
        os.kill(hub.proc.pid, signal.SIGUSR2)  # the files come back
        assert (await hub.line()).startswith("RELEASED")
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                    session.get(hub.url + "/api/health") as resp):
            assert resp.status == 200
    lines = hub.log_lines()  # the hub has stopped: its whole log
    accept_lines = [line for line in lines if "accept" in line]
    assert 1 <= len(accept_lines) <= 2, "\n".join(lines[:40])
    assert not any("Traceback" in line for line in lines), "\n".join(lines[:40])
    assert len(lines) < 20, "\n".join(lines[:40])
