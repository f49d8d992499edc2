"""Many subscribers: one hub process, clients in other processes, a probe client measuring latency.

    python bench/fanout_many.py                       # 200 mixed clients, 1,000 clients, 1 client; JSON
    python bench/fanout_many.py --only many --runs 5
    python bench/fanout_many.py --hub-cpu 0 --hub-quota 0.5   # the hub pinned to CPU 0, half a core
    python bench/fanout_many.py --only many --tree . --tree ../old-checkout   # old versus new, alternated

Parts (each run starts a fresh hub process; medians over ``--runs`` are reported):

* ``many``: 200 subscribed clients, a mix of Home Assistant JSON (``subscribe_events``), coalesced Home
  Assistant JSON (``coalesce_messages``), ``subscribe_entities`` and the msgpack stream, spread over client
  processes, plus one probe client (plain Home Assistant JSON) in a process of its own, at 1,000 state
  writes/s for ``--seconds``. Reports the probe's p50/p99/max latency and whether it received every change,
  messages delivered to all clients, the hub's CPU time per delivered message, and clients the hub cut off.
* ``hold``: the same with 1,000 clients at ``--hold-rate`` writes/s (100: a household's rate; 1,000 clients
  at 1,000 writes/s are a million messages a second): whether the hub stays up, its RSS (and peak), clients
  still connected at the end.
* ``single``: the probe alone, the hub's 1,000 entities carrying Home Assistant's attribute shape
  (``friendly_name``, ``unit_of_measurement``, ``device_class``) plus the timestamp, at 1,000 writes/s.

Every write carries ``perf_counter_ns`` in its attributes; latency is the probe's ``perf_counter_ns`` at
receipt minus that (CLOCK_MONOTONIC is system-wide on Linux). Clients are raw asyncio WebSocket clients that
count messages without decoding them (the probe decodes), so that hundreds fit on a small machine; they
still share its cores with the hub, which the figures include. The hub runs without the recorder.

``--hub-cpu 0 --clients-cpu 1`` gives the hub a core of its own and puts every client on the other, the probe
above the counting workers in priority: on a two-core machine, the nearest to clients on other machines.
``--hub-cpu N`` pins the hub process to CPU N (``sched_setaffinity``); ``--hub-quota F`` caps it at F of a
CPU with a cgroup (v1 ``cpu`` controller or v2 ``cpu.max``; needs root; reported as not applied otherwise).
``--tree . --tree OLD`` measures several source trees' hubs in one session, their runs alternated (results
per tree): old versus new on a machine whose load changes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTITIES = 1000
MODES = ("ha_plain", "ha_coalesced", "ha_entities", "stream")
PER_WORKER = 100


# -- a raw WebSocket client that counts messages -----------------------------------------

def _client_frame(payload: bytes, opcode: int) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class CountingClient(asyncio.Protocol):
    """Handshake, authenticate, subscribe; then count messages (events, array items, stream states)."""

    def __init__(self, mode: str, token: str, ready: asyncio.Future[None], probe: Probe | None = None) -> None:
        self.mode, self.token, self.ready, self.probe = mode, token, ready, probe
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.handshaken = False
        self.stage = 0
        self.count = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        path = "/api/stream" if self.mode == "stream" else "/api/websocket"
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        if self.mode == "stream":
            self._send({"type": "auth", "access_token": self.token})

    def _send(self, msg: dict[str, Any]) -> None:
        assert self.transport is not None
        if self.mode == "stream":
            import msgpack

            self.transport.write(_client_frame(msgpack.packb(msg), 0x2))
        else:
            self.transport.write(_client_frame(json.dumps(msg).encode(), 0x1))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buf[:end]:
                raise RuntimeError(bytes(buf[:end]).decode())
            del buf[:end + 4]
            self.handshaken = True
        while len(buf) >= 2:
            n, head = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, head = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, head = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < head + n:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[head:head + n])
            del buf[:head + n]
            if opcode == 0x8:
                self.closed = True
                return
            if opcode == 0x9 and self.transport is not None:  # the server's heartbeat: answer it
                self.transport.write(_client_frame(payload, 0xA))
            elif opcode in (0x1, 0x2):
                self._message(payload)

    def _message(self, payload: bytes) -> None:
        if self.stage < 9:
            self._setup(payload)
            return
        if self.probe is not None:
            self.probe.on_payload(payload)
            return
        if self.mode == "stream":
            self.count += payload.count(b"\xa2lc")  # one per state in a snapshot or delta
        elif payload[:1] == b"[":
            self.count += payload.count(b',"type":"event","event":')
        else:
            self.count += 1

    def _setup(self, payload: bytes) -> None:
        # HA: auth_required, auth_ok, [supported_features result], subscribe result (+ entities' first event).
        # Stream: auth_ok, subscribe snapshot.
        self.stage += 1
        if self.mode == "stream":
            if self.stage == 1:
                self._send({"type": "subscribe", "id": 1})
            else:
                self.stage = 9
                self.ready.set_result(None)
            return
        if self.stage == 1:
            self._send({"type": "auth", "access_token": self.token})
        elif self.stage == 2:
            if self.mode == "ha_coalesced":
                self._send({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
            else:
                self.stage = 3
                self._subscribe()
        elif self.stage == 3:
            self._subscribe()
        elif self.stage == 4:
            if self.mode == "ha_entities":
                self.stage = 5  # its first event (all states) follows
            else:
                self.stage = 9
                self.ready.set_result(None)
        elif self.stage == 6:
            self.stage = 9
            self.ready.set_result(None)

    def _subscribe(self) -> None:
        if self.mode == "ha_entities":
            self._send({"id": 2, "type": "subscribe_entities"})
        else:
            self._send({"id": 2, "type": "subscribe_events", "event_type": "state_changed"})


class Probe:
    """Latency of each change from the hub's write to this process's receipt; which stamps arrived."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []  # (write stamp, receipt - stamp)

    def on_payload(self, payload: bytes) -> None:
        now = time.perf_counter_ns()
        data = json.loads(payload)
        for item in data if isinstance(data, list) else (data,):
            new = item.get("event", {}).get("data", {}).get("new_state")
            if new is not None and "t" in new["attributes"]:
                stamp = new["attributes"]["t"]
                self.samples.append((stamp, now - stamp))

    def report(self, t0: int, t1: int, expected: int) -> dict[str, Any]:
        window = sorted(lat for stamp, lat in self.samples if t0 <= stamp <= t1)
        ms = 1e-6
        return {
            "probe_received": len(window), "probe_expected": expected,
            "probe_got_every_change": len(window) == expected,
            "probe_latency_ms_p50": round(window[len(window) // 2] * ms, 3) if window else None,
            "probe_latency_ms_p99": round(window[min(len(window) - 1, int(len(window) * 0.99))] * ms, 3)
            if window else None,
            "probe_latency_ms_max": round(window[-1] * ms, 3) if window else None,
        }


async def _worker(url: str, token: str, modes: list[str], probe: bool, cpu: int | None, nice: int) -> None:
    import gc

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if nice:
        os.nice(nice)
    gc.disable()  # the measuring side must not add its own pauses
    loop = asyncio.get_running_loop()
    port = int(url.rsplit(":", 1)[1])
    probe_state = Probe() if probe else None
    clients: list[CountingClient] = []
    for i in range(0, len(modes), 20):  # a few at a time: the hub admits a bounded number of handshakes
        batch = []
        for mode in modes[i:i + 20]:
            ready: asyncio.Future[None] = loop.create_future()
            _, client = await loop.create_connection(
                lambda m=mode, r=ready: CountingClient(m, token, r, probe_state), "127.0.0.1", port)
            clients.append(client)
            batch.append(ready)
        await asyncio.wait_for(asyncio.gather(*batch), 60)
    print("READY", len(clients), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "EXIT":
            break
        if line[0] == "MARK":
            closed = {mode: sum(c.closed for c in clients if c.mode == mode) for mode in MODES}
            counts = {mode: sum(c.count for c in clients if c.mode == mode) for mode in MODES}
            print("COUNT", sum(c.count for c in clients), json.dumps(closed, separators=(",", ":")),
                  json.dumps(counts, separators=(",", ":")), flush=True)
        elif line[0] == "REPORT" and probe_state is not None:
            t0, t1, expected = int(line[1]), int(line[2]), int(line[3])
            for _ in range(100):  # a hub that fell behind may still be sending: up to 10 s more
                if sum(t0 <= stamp <= t1 for stamp, _ in probe_state.samples) >= expected:
                    break
                await asyncio.sleep(0.1)
            print(json.dumps(probe_state.report(t0, t1, expected)), flush=True)
    for client in clients:
        if client.transport is not None:
            client.transport.abort()


# -- the hub process ---------------------------------------------------------------------

def _rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


async def _hub(clients: int, cpu: int | None, profile: str | None = None) -> None:
    import tempfile

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer
    from qilu_hub.config import load_config

    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as tmp:
        config = load_config(tmp)
        room = clients * 2 + 200  # one peer address: the fair-share and "nearly full" rules must not bite
        config["hub"].update({"max_connections": room, "max_connections_per_address": room,
                              "max_unauthenticated_per_address": room})
        hub = Hub(tmp, config, recorder=False)
        api = ApiServer("127.0.0.1", 0, max_websockets=clients + 50)
        hub.add_component(api)
        await hub.async_start()
        _, token = hub.tokens.create("bench", Scopes(admin=True))
        clock = time.perf_counter_ns
        ids = [f"sensor.meter_{i}" for i in range(ENTITIES)]
        names = [f"Meter {i}" for i in range(ENTITIES)]

        def write(i: int) -> None:
            k = i % ENTITIES
            hub.states.async_set(ids[k], i, {"friendly_name": names[k], "unit_of_measurement": "W",
                                             "device_class": "power", "t": clock()})

        for i in range(ENTITIES):
            write(i)
        print("READY", api.url, token, flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == "EXIT":
                break
            if line[0] == "PACE":
                rate, seconds = int(line[1]), float(line[2])
                n = int(rate * seconds)
                profiler = None
                if profile:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                cpu0 = time.process_time()
                times0 = os.times()
                flushes0 = api.flusher.flushes
                t0 = clock()
                start = loop.time()
                for i in range(n):
                    # Behind schedule it still yields after each write, as changes arriving from sockets do
                    # (one callback per loop turn), rather than writing a burst in one turn.
                    await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
                    write(i)
                t1 = clock()
                late = loop.time() - start - seconds
                await asyncio.sleep(1.0)  # let the queues drain (counted: delivering them is the hub's work)
                cpu_s = time.process_time() - cpu0
                times1 = os.times()
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)
                print("DONE", t0, t1, round(cpu_s, 4), n, round(late, 4), round(times1.system - times0.system, 4),
                      api.flusher.flushes - flushes0, flush=True)
            elif line[0] == "STATS":
                connected = len(api.ha_connections) + len(api.stream_fanout.connections)
                print(json.dumps({"hub_connected": connected, **_rss()}), flush=True)
        await hub.async_stop()


# -- orchestration -----------------------------------------------------------------------

class Quota:
    """A cgroup capping one process at a fraction of a CPU (v1 cpu controller, else v2); removed on exit."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.path: Path | None = None
        self.applied = False

    def apply(self, pid: int) -> None:
        name = f"qilu-bench-{os.getpid()}-{pid}"
        period = 10000  # short periods: throttling spread thin (a slower core), not 100 ms stalls
        v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
        try:
            if (v1 / "cpu.cfs_quota_us").exists():
                self.path = v1 / name
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(period))
                (self.path / "cpu.cfs_quota_us").write_text(str(int(period * self.fraction)))
            elif (v2 / "cgroup.controllers").exists():
                self.path = v2 / name
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{int(period * self.fraction)} {period}")
            else:
                return
            (self.path / "cgroup.procs").write_text(str(pid))
            self.applied = True
        except OSError as err:
            print(f"CPU quota not applied: {err}", file=sys.stderr)

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()


async def _line(proc: asyncio.subprocess.Process, timeout: float = 120) -> list[str]:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().split()


async def _tell(proc: asyncio.subprocess.Process, text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write((text + "\n").encode())
    await proc.stdin.drain()


async def _spawn(*args: str, path: str | None = None) -> asyncio.subprocess.Process:
    env = None
    if path is not None:  # another tree's import root first: that tree's hub is measured
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))}
    return await asyncio.create_subprocess_exec(sys.executable, __file__, *args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, env=env)


async def run_part(clients: int, seconds: float, rate: int, hub_cpu: int | None, quota: float | None,
                   clients_cpu: int | None = None, profile: str | None = None,
                   tree_path: str | None = None) -> dict[str, Any]:
    # --clients-cpu: every client process on that CPU, the counting workers at a lower priority than the probe, so
    # that on a two-core machine the hub has a core of its own and the probe's figures are the hub's, not the
    # crowd's (an approximation of clients on other machines)
    placed = ["--cpu", str(clients_cpu)] if clients_cpu is not None else []
    hub = await _spawn("--hub", str(clients), *(["--cpu", str(hub_cpu)] if hub_cpu is not None else []),
                       *(["--profile", profile] if profile else []), path=tree_path)
    cgroup = Quota(quota) if quota else None
    workers: list[asyncio.subprocess.Process] = []
    try:
        if cgroup is not None:
            cgroup.apply(hub.pid)
        _, url, token = await _line(hub)
        modes = [MODES[i % len(MODES)] for i in range(clients)]
        for i in range(0, clients, PER_WORKER):
            workers.append(await _spawn("--worker", ",".join(modes[i:i + PER_WORKER]), "--url", url,
                                        "--token", token, *placed, *(["--nice", "10"] if placed else [])))
        probe = await _spawn("--worker", "ha_plain", "--url", url, "--token", token, "--probe", *placed)
        for proc in (*workers, probe):
            await _line(proc)  # READY
        await asyncio.sleep(0.5)

        async def counts() -> tuple[int, dict[str, int], dict[str, int]]:
            total, closed, by_mode = 0, dict.fromkeys(MODES, 0), dict.fromkeys(MODES, 0)
            for proc in workers:
                await _tell(proc, "MARK")
                _, count, gone, got = await _line(proc)
                total += int(count)
                for mode, n in json.loads(gone).items():
                    closed[mode] += n
                for mode, n in json.loads(got).items():
                    by_mode[mode] += n
            return total, closed, by_mode

        before, _, before_by_mode = await counts()
        await _tell(hub, f"PACE {rate} {seconds}")
        _, t0, t1, cpu_s, writes, late, sys_s, flushes = await _line(hub, seconds * 10 + 60)
        # Clients that fell behind (they share a core, at a lower priority) may still be reading what the kernel
        # holds for them: count until two counts half a second apart agree (at most 20 s).
        after, closed, after_by_mode = await counts()
        first_count = after
        for _ in range(40):
            await asyncio.sleep(0.5)
            settled = after
            after, closed, after_by_mode = await counts()
            if after == settled:
                break
        await _tell(probe, f"REPORT {t0} {t1} {writes}")
        result: dict[str, Any] = json.loads(await _read_json(probe))
        await _tell(hub, "STATS")
        stats = json.loads(await _read_json(hub))
        delivered = after - before + result["probe_received"]
        result.update({
            "clients": clients, "writes": int(writes), "writer_late_s": float(late),
            "delivered_messages": delivered,
            # counted 1 s after the last write: below delivered_messages when the clients were still reading
            "delivered_by_then": first_count - before + result["probe_received"],
            "hub_cpu_s": float(cpu_s),
            "hub_cpu_us_per_delivered": round(float(cpu_s) / max(delivered, 1) * 1e6, 2),
            # of which in the kernel (system calls: the sockets' writes): what batching can cut
            "hub_sys_us_per_delivered": round(float(sys_s) / max(delivered, 1) * 1e6, 2),
            "hub_flushes": int(flushes),  # windows in which the hub wrote to its clients
            # per kind of client (the stream's deltas count states: a window's repeated changes of one entity
            # coalesce into one, so it may be below the writes times its clients when the hub falls behind)
            **{f"delivered_{mode}": after_by_mode[mode] - before_by_mode[mode] for mode in MODES},
            "clients_cut_off": sum(closed.values()),
            **{f"clients_cut_off_{mode}": n for mode, n in closed.items()},
            "hub_connected_at_end": stats["hub_connected"],
            "hub_rss_mib": stats.get("VmRSS"), "hub_rss_peak_mib": stats.get("VmHWM"),
            "hub_alive": hub.returncode is None,
            "cpu_quota_applied": bool(cgroup and cgroup.applied),
        })
        return result
    finally:
        for proc in (*workers, hub):
            with contextlib.suppress(Exception):
                await _tell(proc, "EXIT")
        for proc in (*workers, hub):
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(NameError):
            await _tell(probe, "EXIT")
            await probe.wait()
        if cgroup is not None:
            cgroup.remove()


async def _read_json(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool):
            merged[key] = all(r[key] for r in runs)
        elif isinstance(value, int | float):
            merged[key] = statistics.median(r[key] for r in runs if r[key] is not None)
        else:
            merged[key] = value
    merged["runs"] = runs
    return merged


def _tree_measured(package: Path) -> str:
    """The tree measured, named relative to the project root (results are committed: no machine paths)."""
    try:
        return str(package.resolve().relative_to(ROOT))
    except ValueError:
        return "installed package (outside the project)"


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    import qilu_hub

    out: dict[str, Any] = {
        "qilu_hub_from": _tree_measured(Path(qilu_hub.__file__).parent), "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(), "rate": args.rate, "hold_rate": args.hold_rate,
        "seconds": args.seconds, "runs": args.runs,
        "hub_cpu": args.hub_cpu, "hub_quota": args.hub_quota, "clients_cpu": args.clients_cpu,
    }
    parts = {"many": (args.clients, args.rate), "hold": (args.hold, args.hold_rate), "single": (0, args.rate)}
    with tempfile.TemporaryDirectory(prefix="qilu-fanout-trees-") as tmp:
        # --tree: each tree laid out as installed (bench/driver_loading.py), its runs alternating with the others'
        # so that a machine busy with something else slows every tree alike.
        trees: dict[str, str | None] = {"": None}
        if args.tree:
            out["qilu_hub_from"] = "each --tree, named by its git revision in the results"
            sys.path.insert(0, str(ROOT))
            from bench.driver_loading import _import_root
            from bench.report import tree_name

            # results are named by each tree's revision, never by the path given (results are committed)
            trees = {}
            for i, name in enumerate(args.tree):
                label = tree_name(Path(name))
                label = label if label not in trees else f"{label} (tree {i + 1})"
                trees[label] = str(_import_root(Path(name).resolve(), Path(tmp) / f"site{i}")[0])
        for name, (clients, rate) in parts.items():
            if args.only and name not in args.only:
                continue
            runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
            for _ in range(args.runs):
                for tree, path in trees.items():
                    runs[tree].append(await run_part(clients, args.seconds, rate, args.hub_cpu, args.hub_quota,
                                                     args.clients_cpu, args.profile, path))
            if args.tree:
                out[name] = {tree: _median(tree_runs) for tree, tree_runs in runs.items()}
            else:
                out[name] = _median(runs[""])
    out["load_average_at_end"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--hold", type=int, default=1000)
    parser.add_argument("--hold-rate", type=int, default=100, help="writes/s while holding --hold clients")
    parser.add_argument("--only", action="append", choices=("many", "hold", "single"), default=[])
    parser.add_argument("--hub-cpu", type=int, help="pin the hub process to this CPU")
    parser.add_argument("--hub-quota", type=float, help="cap the hub process at this fraction of a CPU")
    parser.add_argument("--clients-cpu", type=int,
                        help="pin every client process to this CPU, the probe above the others in priority")
    parser.add_argument("--tree", action="append", default=[],
                        help="measure this source tree's hub (several: alternated, results per tree)")
    parser.add_argument("--profile", help="write a cProfile of the hub while it writes to this file (slows it)")
    parser.add_argument("--hub", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hub is not None:
        asyncio.run(_hub(args.hub, args.cpu, args.profile))
    elif args.worker:
        asyncio.run(_worker(args.url, args.token, args.worker.split(","), args.probe, args.cpu, args.nice))
    else:
        print(json.dumps(asyncio.run(_main(args)), indent=2))


if __name__ == "__main__":
    main()
