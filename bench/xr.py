"""XR bridge benchmark against the headless Monado runtime (scripts/build-monado.sh). Prints JSON.

  python bench/xr.py [--samples 60] [--frames 60] [--graphics vulkan,opengl] [--runs 3]

1. latency: a state change at the hub -> the panel showing it released to its swapchain and submitted with
   xrEndFrame, and -> the predicted display time of that frame ("on screen"); in ms and in frames.
2. frame cost with 20 and 100 panels (idle; one panel changing every frame; all changing every frame; a
   "burst": one change shown on every panel, every 24th frame, as when one state appears on all panels):
   wall time per frame spent in the bridge (xrWaitFrame excluded) split
   into render (Pillow), upload (staging copy + vkQueueSubmit; lavapipe copies on the CPU, beside the frame) and logic
   (stream, input, hit tests, layers, xrBegin/EndFrame); plus the main thread's CPU time and the whole
   process's CPU (which also holds the in-process runtime and lavapipe threads).
Both with the Vulkan binding (upload = staging copy + vkQueueSubmit, whose fence is waited for a frame later, before
the staging memory is written again) and the OpenGL one (EGL on
llvmpipe; upload = glTexSubImage2D + glFlush). Each scenario runs in its own process (one OpenXR instance
per process). A scenario ending in ":sync" paints every changed panel inside the frame, as the bridge did before
panels were painted off the frame loop (xr_bridge/painter.py), for comparison on the same machine.

Frame pacing: scripts/build-monado.sh patches Monado's null compositor (upstream: a fixed 20 FPS) to pace at
XRT_COMPOSITOR_NULL_FPS, which its env.sh sets to 90. Dropped frames are counted from what the runtime says:
`missed_frames` is the number of display refreshes (the shortest predicted display period seen) skipped between
consecutive frames' predicted display times (xrWaitFrame), `late_frames` the frames whose xrEndFrame returned
after their own predicted display time (XR_KHR_convert_timespec_time), `over_budget_frames` those in which the
bridge itself (xrWaitFrame's return to xrEndFrame's) took longer than one refresh, `over_budget_cpu_frames` those
whose main-thread CPU time alone did (the rest of the over-budget frames were waiting to be scheduled); all counted
after the first 10 frames. The idle scenarios give the machine's own floor of missed frames. On a machine shared
with other work, wall time includes time the process was not scheduled; the main thread's CPU time per frame
does not. The latency scenario runs the real hub in the bench's own process (a thread), so the hub's work
competes with the frame loop for the GIL, which a hub in its own process does not. With --runs N every scenario
runs N times (round after round) and each figure is the median over the runs (`per_run` keeps the key ones per
run: a median of p99s hides a bad run).

  python bench/xr.py --only latency,20:idle,20:one,20:burst,20:burst:sync,100:idle,100:one,100:burst,100:burst:sync \
      --graphics vulkan --frames 240 --runs 3

`--busy N` keeps N CPU-bound processes running beside every scenario, at the bench's priority: the frame loop then
competes for the cores with other work, as on a PC that runs something else while a headset is on.

`per_change` gives, per state change the scenario sent (a burst counts once), the painter process's CPU time and
the bytes copied into swapchain images. `--tree old=PATH` runs every scenario also with the code of another
checkout (e.g. a `git worktree` of an older commit with its own .nsroot), interleaved in the same rounds, so the
two are compared under the same load; its figures appear as `SCENARIO@old`."""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# this file is named xr.py: drop its own folder from the path so `import xr` finds pyopenxr, not us
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from bench.report import tree_name  # noqa: E402  (after the path is set)


def runtime_env() -> dict[str, str]:
    d = Path(os.environ.get("QILU_MONADO_DIR") or ROOT / ".cache" / "monado")
    if not (d / "env.sh").exists():
        sys.exit(f"no runtime in {d}: run `bash scripts/build-monado.sh` first")
    out = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(d / 'env.sh'))} && env -0"], check=True, capture_output=True
    ).stdout
    env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
    # the code under test: the caller's PYTHONPATH (a worktree's namespace root) first, as the XR tests do
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
    return env


def scene_text(n: int, light: Any = None, sensor: Any = None) -> str:
    """n panels on a 10-wide grid 1.5 m in front; each shows one light and one sensor."""
    light = light or (lambda i: f"light.l{i}")
    sensor = sensor or (lambda i: f"sensor.s{i}")
    lines = ["version: 1", "immersive_scenes:", "  - name: bench", "    panels:"]
    for i in range(n):
        x, y = -1.35 + 0.3 * (i % 10), 2.2 - 0.2 * (i // 10)
        lines += [
            f"      - id: p{i}",
            f"        placement: {{relative_to: stage, offset: [{x:.2f}, {y:.2f}, -1.5]}}",
            "        size: {width: 0.28, height: 0.18}",
            "        resolution: 1024",
            "        controls:",
            f"          - {{type: toggle, entity: {light(i)}, label: Light {i}}}",
            f"          - {{type: readout, entity: {sensor(i)}, label: Sensor {i}}}",
        ]
    return "\n".join(lines) + "\n"


class DevHubDriver:
    """The stand-in hub (xr_bridge.testing): used when the real hub's API is not available."""

    kind = "devhub (stand-in stream server)"

    def __init__(self, n: int) -> None:
        from qilu_hub.xr_bridge.testing import DevHub, DevHubThread

        self.hub = DevHub("bench", [f"light.l{i}" for i in range(n)], {f"sensor.s{i}": 0 for i in range(n)})
        self.thread = DevHubThread(self.hub)
        self.url = f"ws://127.0.0.1:{self.thread.start()}/api/stream"
        self.token = "bench"
        self.scene = scene_text(n)

    def set(self, seq: int, mark: Any) -> None:
        async def change() -> None:
            mark()  # the moment the hub changes the state
            await self.hub.set_state("sensor.s7", seq)

        self.thread.run(change())

    def stop(self) -> None:
        self.thread.stop()


class RealHubDriver:
    """The real hub: Hub + virtual appliances + the API's msgpack stream, on its own loop thread."""

    kind = "qilu-hub (Hub + hub.api stream + virtual appliances)"
    SENSOR = "sensor.living_room_tv_plug_power"

    def __init__(self, n: int, config_dir: Path) -> None:
        import asyncio

        from qilu_hub import Hub, Scopes
        from qilu_hub.api import ApiServer
        from qilu_hub.virtual import VirtualAppliances

        self.loop = asyncio.new_event_loop()
        self.hub = Hub(config_dir)
        self.hub.add_component(VirtualAppliances(animate=False))
        api = ApiServer("127.0.0.1", 0)
        self.hub.add_component(api)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.hub.async_start(), self.loop).result(30)
        _, self.token = self.hub.tokens.create("bench", Scopes(admin=True))
        self.url = api.url.replace("http", "ws", 1) + "/api/stream"
        self.scene = scene_text(
            n,
            lambda i: "light.living_room_ceiling_light",
            lambda i: self.SENSOR if i == 7 else "climate.bedroom_thermostat",
        )

    def set(self, seq: int, mark: Any) -> None:
        from qilu_hub.context import Context

        def change() -> None:
            mark()
            self.hub.states.async_set(self.SENSOR, seq, {"unit_of_measurement": "W"}, Context("bench"))

        self.loop.call_soon_threadsafe(change)

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.hub.async_stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def _bridge(n: int, hub_url: str | None, token: str, text: str | None = None, graphics: str = "vulkan",
            sync: bool = False) -> Any:
    from qilu_hub.scenes import parse_scene_text
    from qilu_hub.xr_bridge.core import BridgeCore
    from qilu_hub.xr_bridge.placement import PlacementStore
    from qilu_hub.xr_bridge.runtime import XrBridge
    from qilu_hub.xr_bridge.stream import StreamThread

    scene = parse_scene_text(text or scene_text(n)).immersive()
    stream = StreamThread(hub_url, token, list(scene.entities)) if hub_url else None
    core = BridgeCore(scene, PlacementStore(None), stream.call if stream else (lambda *a: None))
    if sync:  # every changed panel painted and uploaded inside the frame (the bridge before painter.py)
        return XrBridge(core, stream, graphics=graphics, inline_paints=10**6, max_uploads=10**6)
    return XrBridge(core, stream, graphics=graphics)


def run_latency(samples: int, graphics: str) -> dict[str, Any]:
    import tempfile

    from qilu_hub.xr_bridge.runtime import summarize

    n = 20
    try:
        import qilu_hub.api  # noqa: F401  (the stream lives there once the API has landed)

        driver_hub: Any = RealHubDriver(n, Path(tempfile.mkdtemp(prefix="qilu-bench-")))
    except ImportError:
        driver_hub = DevHubDriver(n)
    bridge = _bridge(n, driver_hub.url, driver_hub.token, driver_hub.scene, graphics)
    bridge.create()
    changes: dict[int, tuple[float, int]] = {}  # seq -> (monotonic clock at the hub, bridge frame then)
    results: list[tuple[float, int, float | None]] = []
    done = threading.Event()
    margins: list[float] = []

    def on_frame(b: Any) -> None:
        shown_now = display_time_s(b)
        if b.core.frame == WARM_FRAMES:  # pacing counted from here: set-up and the first full draw excluded
            clear_stats(b.stats)
        elif b.core.frame > WARM_FRAMES and shown_now is not None:
            margins.append(shown_now - time.monotonic())
        last = b.core._diff._last.get("p7")
        if last is None:
            return
        try:
            seq = int(float(last.controls[1].text.split()[0]))
        except (ValueError, IndexError):
            return
        if seq in changes:
            t0, f0 = changes.pop(seq)
            results.append((time.monotonic() - t0, b.core.frame - f0, None if shown_now is None else shown_now - t0))
            if len(results) >= samples:
                done.set()

    bridge.on_frame = on_frame

    def driver() -> None:
        while bridge.core.frame < WARM_FRAMES:  # let the session reach FOCUSED and draw everything once
            time.sleep(0.05)
        for seq in range(1, samples + 1):
            time.sleep(random.uniform(0.08, 0.2))  # random phase against the runtime's frame clock
            driver_hub.set(seq, lambda seq=seq: changes.__setitem__(seq, (time.monotonic(), bridge.core.frame)))
        done.wait(30)
        bridge.request_exit()

    threading.Thread(target=driver, daemon=True).start()
    bridge.run()
    period = summarize(bridge.stats.frame_period_s)
    pacing = pacing_stats(bridge.stats, margins)
    bridge.destroy()
    driver_hub.stop()
    lat = sorted(r[0] for r in results)
    frames = sorted(r[1] for r in results)
    return {
        "hub": driver_hub.kind,
        "samples": len(results),
        "latency_ms": summarize(lat),
        "latency_to_display_ms": summarize(r[2] for r in results if r[2] is not None),
        "latency_frames": {
            "p50": frames[len(frames) // 2],
            "p99": frames[min(len(frames) - 1, int(0.99 * len(frames)))],
            "max": frames[-1],
        }
        if frames
        else {},
        "frame_period_ms": period,
        **pacing,
    }


WARM_FRAMES = 10


def clear_stats(stats: Any) -> None:
    for f in vars(stats).values():
        if hasattr(f, "clear"):  # the per-frame series; the refresh period stays
            f.clear()


def display_time_s(b: Any) -> float | None:
    """The frame just submitted's predicted display time on the monotonic clock (time.monotonic), or None
    where the runtime cannot convert XrTime (no XR_KHR_convert_timespec_time)."""
    import xr

    if b.last_display_time is None or "XR_KHR_convert_timespec_time" not in b.extensions:
        return None
    ts = xr.convert_time_to_timespec_time_khr(b.instance, b.last_display_time)
    return float(ts.tv_sec) + ts.tv_nsec / 1e9


def pacing_stats(s: Any, margins_s: list[float]) -> dict[str, Any]:
    """Dropped frames as the runtime saw them (see the module docstring), and the display period it paced at."""
    period_s = s.refresh_period_ns / 1e9 if s.refresh_period_ns else None
    work = [a + b + c for a, b, c in zip(s.render_s, s.upload_s, s.logic_s, strict=True)]
    cpu = list(s.cpu_s)
    m = sorted(margins_s)
    return {
        "refresh_period_ms": round(1e3 * period_s, 3) if period_s else None,
        "missed_frames": sum(s.missed),
        "frames_after_a_miss": sum(1 for x in s.missed if x),
        "over_budget_frames": sum(1 for w in work if period_s and w > period_s),
        # of those, the frames whose main-thread CPU time alone exceeded a refresh (the others were preempted)
        "over_budget_cpu_frames": sum(1 for c in cpu if period_s and c > period_s),
        "late_frames": sum(1 for x in m if x < 0) if m else None,
        "submit_margin_ms": {  # predicted display time minus xrEndFrame's return; below 0: late
            "p50": round(1e3 * statistics.median(m), 3),
            "p1": round(1e3 * m[int(0.01 * len(m))], 3),
            "min": round(1e3 * m[0], 3),
        }
        if m
        else {},
    }


BURST_EVERY = 24  # frames: 100 panels at 8 swapped in per frame need 13
# changes shown on every panel before measuring: a swapchain cycles through its images (Monado: 3) and an image's
# first write is the whole panel, so measuring starts once each image of each panel has been written
PRIME_CHANGES = 2


def painter_cpu_s(bridge: Any) -> float | None:
    """CPU time (user + system) the bridge's painter process has used so far, from /proc (Linux)."""
    painter = getattr(bridge, "painter", None)
    proc = getattr(painter, "_proc", None)
    if proc is None or proc.pid is None:
        return None
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def run_cost(n: int, mode: str, frames: int, graphics: str, sync: bool = False) -> dict[str, Any]:
    from qilu_hub.xr_bridge.runtime import summarize
    from qilu_hub.xr_bridge.stream import StreamEvent

    bridge = _bridge(n, None, "", graphics=graphics, sync=sync)
    bridge.create()
    bridge.core.apply_stream(
        [
            StreamEvent(
                "snapshot",
                {
                    **{f"light.l{i}": {"v": "off", "a": {}} for i in range(n)},
                    **{f"sensor.s{i}": {"v": 0, "a": {}} for i in range(n)},
                },
            ),
            StreamEvent("online"),
        ]
    )
    # measured from the first frame after 10 in which every panel has been drawn once (its swapchain made) and
    # PRIME_CHANGES changes since: drawn off the frame loop, the first full draw spreads over frames, and making
    # swapchains and writing each of their images once is set-up cost
    warm = [WARM_FRAMES]
    tick = [0]
    cpu0: list[float] = []
    painter0: list[float | None] = []
    changes = [0]  # state changes sent while measuring (a burst is one change shown on every panel)
    primed: list[int] = []
    sent_prime: list[int] = []
    bursts: dict[int, int] = {}  # value shown on every panel -> frame it was set
    shown_after: list[int] = []  # frames until the last panel showed it
    margins: list[float] = []  # per measured frame: predicted display time - xrEndFrame's return, s

    def shows(view: Any, value: int) -> bool:
        try:
            return int(float(view.controls[1].text.split()[0])) >= value
        except (ValueError, IndexError):
            return False

    def shows_exactly(view: Any, value: int) -> bool:
        try:
            return view is not None and int(float(view.controls[1].text.split()[0])) == value
        except (ValueError, IndexError):
            return False

    def all_show(b: Any, value: int) -> bool:
        """Every panel shows this burst's value or a later burst's (a burst that takes longer than BURST_EVERY
        frames to reach every panel is overtaken by the next one, and must still be counted, not dropped)."""
        last = b.core._diff._last
        return all((v := last.get(f"p{i}")) is not None and shows(v, value) for i in range(n))

    def on_frame(b: Any) -> None:
        shown = display_time_s(b)  # first: on_frame runs right after xrEndFrame
        now = time.monotonic()
        tick[0] += 1
        if cpu0 and shown is not None:
            margins.append(shown - now)
        if not cpu0:
            if tick[0] < warm[0] or len(b.chains) < n:
                return
            if len(primed) < PRIME_CHANGES:  # every panel's swapchain images written once (see PRIME_CHANGES)
                value = -1 - len(primed)
                if sent_prime[-1:] != [value]:
                    sent_prime.append(value)
                    b.core.apply_stream([StreamEvent("delta", {f"sensor.s{i}": {"v": value, "a": {}}
                                                               for i in range(n)})])
                elif all(shows_exactly(b.core._diff._last.get(f"p{i}"), value) for i in range(n)):
                    primed.append(value)
                return
            warm[0] = tick[0]
            cpu0.append(time.process_time())
            painter0.append(painter_cpu_s(b))
            clear_stats(b.stats)
        if mode in ("one", "all") or (mode == "burst" and (tick[0] - warm[0]) % BURST_EVERY == 0):
            changes[0] += 1
        if mode == "one":  # one panel's state changes every frame
            b.core.apply_stream([StreamEvent("delta", {f"sensor.s{tick[0] % n}": {"v": tick[0], "a": {}}})])
        elif mode == "all":  # every panel changes every frame (worst case)
            b.core.apply_stream([StreamEvent("delta", {f"sensor.s{i}": {"v": tick[0], "a": {}} for i in range(n)})])
        elif mode == "burst":
            for value, start in list(bursts.items()):
                if all_show(b, value):
                    shown_after.append(b.core.frame - start)
                    del bursts[value]
            if (tick[0] - warm[0]) % BURST_EVERY == 0:
                b.core.apply_stream([StreamEvent("delta", {f"sensor.s{i}": {"v": tick[0], "a": {}}
                                                           for i in range(n)})])
                bursts[tick[0]] = b.core.frame
        if tick[0] >= warm[0] + frames:
            b.request_exit()

    bridge.on_frame = on_frame
    bridge.run()
    s = bridge.stats
    measured = len(s.cpu_s)
    proc_cpu = (time.process_time() - cpu0[0]) / max(1, measured) if cpu0 else 0.0
    painter_end = painter_cpu_s(bridge)
    painter_s = painter_end - painter0[0] if painter0 and painter0[0] is not None and painter_end is not None else None
    sent = changes[0] or None  # idle: no change to divide by
    upload_bytes = getattr(s, "upload_bytes", None)  # (absent before partial uploads: --tree with older code)
    out = {
        "panels": n,
        "mode": mode + (":sync" if sync else ""),
        "frames": measured,
        "uploads_per_frame_mean": round(sum(s.uploads) / max(1, measured), 2),
        "bridge_wall_per_frame_ms": summarize(
            [a + b + c for a, b, c in zip(s.render_s, s.upload_s, s.logic_s, strict=True)]
        ),
        "render_ms": summarize(s.render_s),
        "upload_ms": summarize(s.upload_s),
        "logic_ms": summarize(s.logic_s),
        "main_thread_cpu_ms": summarize(s.cpu_s),
        "process_cpu_per_frame_ms": round(1e3 * proc_cpu, 3),
        # per state change sent (a burst counts once, however many panels show it): the painter process's CPU
        # time (clock ticks, so 10 ms steps over the whole run) and the bytes copied into swapchain images
        "per_change": {
            "changes": changes[0],
            "painter_cpu_ms": round(1e3 * painter_s / sent, 3) if painter_s is not None and sent else None,
            "upload_bytes": round(sum(upload_bytes) / sent) if upload_bytes is not None and sent else None,
            "panel_uploads": round(sum(s.uploads) / sent, 2) if sent else None,
        },
        "frame_period_ms": summarize(s.frame_period_s),
        **pacing_stats(s, margins),
    }
    if mode == "burst":
        shown_after.sort()
        out["burst_shown_on_all_panels_after_frames"] = {
            "bursts": len(shown_after),
            "not_shown_by_the_end": len(bursts),
            "p50": shown_after[len(shown_after) // 2] if shown_after else None,
            "max": shown_after[-1] if shown_after else None,
        }
    bridge.destroy()
    return out


def tree_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    """The runtime env with another checkout's code under test (its .nsroot first, as the tests lay it out)."""
    return dict(env, PYTHONPATH=os.pathsep.join((str(tree / ".nsroot"), str(tree))))


def run_scenario(graphics: str, sc: str, samples: int, frames: int, env: dict[str, str]) -> dict[str, Any]:
    """One scenario in its own process (one OpenXR instance per process)."""
    r = subprocess.run(
        [sys.executable, __file__, "--scenario", f"{graphics}/{sc}", "--samples", str(samples),
         "--frames", str(frames)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if r.returncode == 0 and lines else {"error": r.stderr[-2000:]}


PER_RUN = ("missed_frames", "late_frames", "over_budget_frames", "over_budget_cpu_frames")


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every number over the runs (the first run's value for anything else); the pacing counts and
    the main thread's and latency's p99 are also kept per run, since a median of p99s hides a bad run."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]

    def med(vals: list[Any]) -> Any:
        if all(isinstance(v, dict) for v in vals):
            return {k: med([v[k] for v in vals if k in v]) for k in vals[0]}
        nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(nums) == len(vals) and nums:
            m = statistics.median(nums)
            return int(m) if m == int(m) and all(isinstance(v, int) for v in nums) else round(m, 3)
        return vals[0]

    out: dict[str, Any] = med(ok)
    if len(runs) > 1:
        per: dict[str, Any] = {k: [r.get(k) for r in ok] for k in PER_RUN if k in ok[0]}
        for key in ("main_thread_cpu_ms", "latency_ms", "latency_to_display_ms"):
            if key in ok[0]:
                per[key + "_p99"] = [r[key].get("p99_ms") for r in ok]
        if "latency_frames" in ok[0]:
            per["latency_frames_p99"] = [r["latency_frames"].get("p99") for r in ok]
        out["per_run"] = per
        out["failed_runs"] = len(runs) - len(ok)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--graphics", default="vulkan,opengl", help="bindings to measure, comma-separated")
    ap.add_argument("--only", help="scenarios to run, comma-separated (e.g. latency,20:burst,20:burst:sync)")
    ap.add_argument("--runs", type=int, default=1, help="runs of each scenario; figures are medians over runs")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                    help="also run every scenario with another checkout's code (e.g. old=../xr-old), in the same "
                    "rounds; its figures are reported as SCENARIO@LABEL")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="N CPU-bound processes at the bench's own priority run beside every scenario: other work "
                    "on the PC (a game, a compile) competing for its cores, as a headset's host rarely sits idle")
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.scenario:  # child process: one scenario, JSON on the last stdout line
        graphics, sc = a.scenario.split("/")
        if sc == "latency":
            res = run_latency(a.samples, graphics)
        else:
            n, mode, *variant = sc.split(":")
            res = run_cost(int(n), mode, a.frames if mode != "all" else max(10, a.frames // 3), graphics,
                           sync=variant == ["sync"])
        print(json.dumps(res))
        return
    env = runtime_env()
    scenarios = a.only.split(",") if a.only else [
        "latency", "20:idle", "20:one", "20:all", "20:burst", "20:burst:sync", "100:idle", "100:one", "100:all",
        "100:burst", "100:burst:sync"]
    fps = env.get("XRT_COMPOSITOR_NULL_FPS") or "20 (unpatched)"
    report: dict[str, Any] = {
        "runtime": f"Monado 25 headless (null compositor, XRT_COMPOSITOR_NULL_FPS={fps}) + lavapipe (Vulkan) / "
        "llvmpipe (OpenGL on EGL)",
        "cpus": os.cpu_count(),
        "runs": a.runs,
        "load_average_1min": {"start": round(os.getloadavg()[0], 2)},
    }
    envs = {"": env}
    for spec in a.tree:
        label, _, path = spec.partition("=")
        envs["@" + label] = tree_env(env, Path(path).resolve())
    report["trees"] = {"this": tree_name(ROOT),
                       **{k[1:]: tree_name(Path(v["PYTHONPATH"].split(os.pathsep)[1])) for k, v in envs.items() if k}}
    todo = [(g, sc, t) for g in a.graphics.split(",") for sc in scenarios for t in envs]
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {k: [] for k in todo}
    report["busy_processes"] = a.busy
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    try:
        for _ in range(a.runs):  # round after round, so that a busy spell on a shared machine hits every scenario
            for graphics, sc, tree in todo:  # (and the trees compared side by side, scenario by scenario)
                runs[graphics, sc, tree].append(run_scenario(graphics, sc, a.samples, a.frames, envs[tree]))
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    for graphics, sc, tree in todo:
        report.setdefault(graphics, {})[sc + tree] = merge_runs(runs[graphics, sc, tree])
    report["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    budget_90hz_ms = 1000 / 90
    report["notes"] = {
        "frame_budget_90hz_ms": round(budget_90hz_ms, 2),
        "cpu_target_20_panels_ms": 2.0,
        "upload": "lavapipe executes the buffer->image copy on the CPU; a GPU driver does it asynchronously",
        "upload_gl": "llvmpipe copies glTexSubImage2D's pixels on the CPU (rows flipped first: GL is bottom-up)",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
