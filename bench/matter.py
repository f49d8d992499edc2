"""Benchmark: Matter through the hub, on the namespace LAN of tests/testbeds/matter.py (needs root and
``bash scripts/setup-matter.sh``). Prints one JSON object:

* ``commission_s``: five appliances (light, plug, contact, thermostat, temperature sensor), each from its inbox
  entry to entities with states: ``lifecycle.async_adopt(key, setup_code=QR)`` until every entity of its
  device has a state (median, max, all);
* ``command_to_state_ms``: ``hub.commands.async_call(light, "toggle")`` until the light's new state is in the
  state machine, ``--toggles`` times ``--gap`` s apart (p50, p90, max), and ``back_to_back`` with no gap: the
  next toggle is sent as soon as the previous state arrived (see docs/matter.md for what matter-server's
  subscription intervals do to this);
* ``bridge``: a bridge with ``--bridged`` bridged lights: seconds from adoption until the server has commissioned
  and interviewed it and its node reaches the hub (``node_at_hub_s``), and until every bridged entity has a state
  (``all_entities_s``), the hub's own part of it (``hub_mapping_s``: time spent mapping the node's devices and
  entities, its registry commit included), the entity count, and the CPU seconds the hub, matter-server and
  the bridge's matter.js process spent meanwhile (``cpu_s``);
* ``rss_mb``: resident memory of the hub process (this one) and of matter-server at the end.

Usage: ``sudo python bench/matter.py [--toggles 20] [--gap 1.2] [--bridged 100] [--bridge-only]``
(``--bridge-only``: the bridge figures alone, to see how they grow with ``--bridged``).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qilu_hub import Hub
from qilu_hub.appliances.lifecycle import ApplianceLifecycle
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.matter.manifest import MANIFEST
from qilu_hub.matter.codes import parse_setup_code
from qilu_hub.matter.controller import MatterController
from qilu_hub.sdk._loading import as_driver
from qilu_hub.setup import load_hub_config
from qilu_hub.states import EVENT_STATE_CHANGED
from tests.testbeds import matter as bed

KINDS = ["light", "plug", "contact", "thermostat", "temperature"]


def rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s(pid: int | str) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def key_of(qr: str) -> str:
    code = parse_setup_code(qr)
    return f"{code.vendor_id:04x}-{code.product_id:04x}-{code.discriminator}"


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class StateWaiter:
    """Wakes when an entity's state changes (a bus listener: no polling delay in the figures)."""

    def __init__(self, hub: Hub) -> None:
        self.events: dict[str, asyncio.Event] = {}
        hub.bus.listen(EVENT_STATE_CHANGED, self._changed)

    def _changed(self, event: Any) -> None:
        waiter = self.events.get(event.data["entity_id"])
        if waiter is not None:
            waiter.set()

    def arm(self, entity_id: str) -> asyncio.Event:
        self.events[entity_id] = asyncio.Event()
        return self.events[entity_id]


def entities_with_state(hub: Hub, device_ids: list[str]) -> list[str]:
    out = []
    for device_id in device_ids:
        for entity in hub.entities.for_device(device_id):
            state = hub.states.get(entity.entity_id)
            if state is not None and state.value != "unavailable":
                out.append(entity.entity_id)
    return out


async def run(args: argparse.Namespace, lan: bed.MatterLan, appliances: bed.Appliances,
              bridge: bed.Appliances, work: Path) -> dict[str, Any]:
    config_dir = work / "config"
    config_dir.mkdir()
    config = load_hub_config(config_dir)
    config["matter"] = bed.managed_server_config(port=5580)
    hub = Hub(config_dir, config)
    matter = MatterController()
    hub.add_component(matter)
    drivers = DriverManager(builtin=False, entry_points_group=None, drivers=[as_driver(MANIFEST)])
    hub.add_component(drivers)
    lifecycle = ApplianceLifecycle(drivers, mdns_ipv6=True, ble_enabled=False)
    hub.add_component(lifecycle)
    await hub.async_start()
    waiter = StateWaiter(hub)
    result: dict[str, Any] = {}
    mapping_s: list[float] = []
    sync_node = matter._sync_node

    def timed_sync(node: Any) -> None:
        t0 = time.perf_counter()
        try:
            sync_node(node)
        finally:
            mapping_s.append(time.perf_counter() - t0)

    matter._sync_node = timed_sync  # type: ignore[method-assign]
    try:
        await matter.async_wait_connected(60)
        if not args.bridge_only:
            await devices_and_toggles(args, hub, matter, lifecycle, appliances, waiter, result)
        await bridge_figures(args, hub, matter, lifecycle, bridge, mapping_s, result)
        assert matter.server is not None and matter.server.pid is not None
        result["rss_mb"] = {"hub": rss_mb("self"), "matter_server": rss_mb(matter.server.pid),
                            "appliances_node": rss_mb(appliances.process.pid) if appliances.process else None}
    finally:
        await hub.async_stop()
    return result


async def devices_and_toggles(args: argparse.Namespace, hub: Hub, matter: MatterController,
                              lifecycle: ApplianceLifecycle, appliances: bed.Appliances, waiter: StateWaiter,
                              result: dict[str, Any]) -> None:
    codes = {node: p["qr"] for node, p in appliances.pairing.items()}
    keys = {node: key_of(qr) for node, qr in codes.items()}
    await wait_for(lambda: set(keys.values()) <= {e["key"] for e in lifecycle.inbox_entries()}, 30, "inbox")
    times = []
    for node, qr in codes.items():
        t0 = time.monotonic()
        device_id = await lifecycle.async_adopt(keys[node], setup_code=qr)
        await wait_for(lambda d=device_id: (ents := hub.entities.for_device(d)) and
                       len(entities_with_state(hub, [d])) == len(ents), 60, f"entities of {node}")
        times.append(time.monotonic() - t0)
    result["commission_s"] = {"median": round(statistics.median(times), 3), "max": round(max(times), 3),
                              "all": [round(t, 3) for t in times]}

    light = next(e.entity_id for e in hub.entities.all() if e.entity_id.startswith("light."))

    async def toggles(count: int, gap: float) -> list[float]:
        out = []
        for i in range(count):
            if i and gap:
                await asyncio.sleep(gap)
            before = hub.states.get(light).value  # type: ignore[union-attr]
            changed = waiter.arm(light)
            t0 = time.monotonic()
            await hub.commands.async_call(light, "toggle")
            while hub.states.get(light).value == before:  # type: ignore[union-attr]
                await asyncio.wait_for(changed.wait(), 10)
                changed.clear()
            out.append(1000 * (time.monotonic() - t0))
        return out

    await asyncio.sleep(1.2)  # let the commissioning reports' minimum interval pass
    spaced = await toggles(args.toggles, args.gap)
    await asyncio.sleep(1.2)
    burst = await toggles(max(4, args.toggles // 2), 0)
    result["command_to_state_ms"] = {
        "gap_s": args.gap, "p50": round(statistics.median(spaced), 1), "p90": round(pct(spaced, 90), 1),
        "max": round(max(spaced), 1), "n": len(spaced),
        "back_to_back": {"p50": round(statistics.median(burst), 1), "p90": round(pct(burst, 90), 1),
                         "n": len(burst)},
    }



async def bridge_figures(args: argparse.Namespace, hub: Hub, matter: MatterController, lifecycle: ApplianceLifecycle,
                         bridge: bed.Appliances, mapping_s: list[float], result: dict[str, Any]) -> None:
    qr = bridge.qr("bridge-0")
    key = key_of(qr)
    await wait_for(lambda: key in {e["key"] for e in lifecycle.inbox_entries()}, 30, "bridge in inbox")
    known = set(matter.nodes)
    mapped_before = len(mapping_s)
    assert matter.server is not None and matter.server.pid is not None and bridge.process is not None
    pids = {"hub": os.getpid(), "matter_server": matter.server.pid, "bridge_node": bridge.process.pid}
    cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    await lifecycle.async_adopt(key, setup_code=qr)
    # commissioning and the server's interview of every endpoint, until the node reaches the hub
    await wait_for(lambda: set(matter.nodes) - known, 120, "the bridge's node")
    node_s = time.monotonic() - t0

    def bridged_ready() -> bool:
        node = next((r for r in matter.nodes.values() if len(r.device_ids) > 1), None)
        return node is not None and len(entities_with_state(hub, node.device_ids[1:])) >= args.bridged

    await wait_for(bridged_ready, 120, "bridged entities")
    node = next(r for r in matter.nodes.values() if len(r.device_ids) > 1)
    result["bridge"] = {"bridged": args.bridged, "node_at_hub_s": round(node_s, 2),
                        "all_entities_s": round(time.monotonic() - t0, 2),
                        "hub_mapping_s": round(sum(mapping_s[mapped_before:]), 3),
                        "entities": len(node.entity_ids), "devices": len(node.device_ids),
                        # CPU seconds each process spent meanwhile: which side the time goes to
                        "cpu_s": {name: round(cpu_s(pid) - cpu_before[name], 2) for name, pid in pids.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toggles", type=int, default=20)
    parser.add_argument("--gap", type=float, default=1.2)
    parser.add_argument("--bridged", type=int, default=100)
    parser.add_argument("--bridge-only", action="store_true")
    args = parser.parse_args()
    reason = bed.missing()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory() as tmp, bed.MatterLan(Path(tmp)) as lan:
        appliances = lan.appliances(KINDS)
        bridge = lan.appliances(["bridge"], bridged=f"light*{args.bridged}", first_port=5600)
        with lan.entered():
            result = asyncio.run(run(args, lan, appliances, bridge, Path(tmp)))
    result["machine"] = {"cpus": len(os.sched_getaffinity(0)), "loadavg_1min": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
