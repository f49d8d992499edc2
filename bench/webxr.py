"""WebXR client benchmark: the hub's /xr/ page in Debian's headless Chromium with IWER emulating a Quest 3, against a
real hub with the demo appliances (the test bed of tests/xr_web). Prints JSON.

  python bench/webxr.py [--runs 3] [--samples 30] [--cpu-frames 300] [--entries 5]

Each run starts its own hub and browser; "median" holds the median over runs of every figure, "runs" each run.

1. select -> new state drawn: controller select on a toggle until the frame that draws the new state; in frames at
   the emulated refresh rate (headless Chromium runs the XR loop at its own ~60 Hz, not the headset's 72/90/120 Hz;
   frames are counted in XR frame callbacks) and in ms.
2. REST change -> panel updated: a POST /api/services/... toggles the light; frames from the last frame before the
   request to the frame that drew the new state (includes one Playwright round trip, so it errs high).
3. page CPU per frame (JS time inside the XR frame callback, drawing commands included; GPU work is SwiftShader's
   on other threads) with 20 panels, idle and with one panel's entity changing about every other frame.
4. first meaningful frame: from the Enter VR click to the first frame with every panel drawn.
5. JS transferred: the page's JavaScript (the emulator excluded): raw, as sent by the hub (gzip), and gzip -9.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.xr_web.hubbed import LIGHT, HubThread  # noqa: E402

IWER = ROOT / "tests" / "xr_web" / "vendor" / "iwer" / "iwer.module.min.js"
CHROMIUM = "/usr/bin/chromium"


def twenty_panels() -> str:
    """20 panels in a 5 x 4 wall; only the first shows the light (the entity the CPU test changes)."""
    lines = ["version: 1", "immersive_scenes:", "  - name: wall", "    panels:"]
    for i in range(20):
        row, col = divmod(i, 5)
        entity = LIGHT if i == 0 else "switch.living_room_tv_plug"
        lines += [
            f"      - id: p{i}",
            f"        title: Panel {i}",
            f"        placement: {{relative_to: stage, offset: [{(col - 2) * 0.55:.2f}, {2.2 - row * 0.35:.2f}, -2]}}",
            "        size: {width: 0.5, height: 0.3}",
            "        controls:",
            f"          - {{type: toggle, entity: {entity}, label: T{i}}}",
            "          - {type: readout, entity: climate.bedroom_thermostat, label: Bedroom}",
        ]
    return "\n".join(lines) + "\n"


def q(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50": round(statistics.median(xs), 3), "p99": round(q(xs, 0.99), 3),
            "max": round(max(xs), 3)}


class Bench:
    def __init__(self, page: Any, hub: HubThread, token: str) -> None:
        self.page, self.hub, self.token = page, hub, token

    def ev(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_for(self, script: str, arg: Any = None, polls: int = 3000) -> Any:
        for _ in range(polls):
            value = self.page.evaluate(script, arg)
            if value:
                return value
            self.page.wait_for_timeout(5)
        raise RuntimeError(f"never true: {script}")

    def frames(self) -> int:
        return int(self.ev("window.xrStats.frames"))

    def wait_frames(self, n: int) -> None:
        self.wait_for("(n) => window.xrStats.frames >= n", self.frames() + n)

    def open(self, scene: str) -> None:
        self.page.goto(f"{self.hub.url}/xr/?iwer=1&scene={scene}")
        self.wait_for("() => window.appReady === true || window.appError !== undefined")

    def enter(self) -> float:
        self.page.click("#enter-vr")
        self.wait_for("() => window.qiluXr.session !== null && window.qiluXr.firstDrawn")
        return float(self.ev("window.xrStats.firstFrameMs"))

    def leave(self) -> None:
        self.ev("window.qiluXr.session.end()")
        self.wait_for("() => window.qiluXr.session === null")

    def rest_toggle(self) -> None:
        req = urllib.request.Request(f"{self.hub.url}/api/services/light/toggle", method="POST",
                                     data=json.dumps({"entity_id": LIGHT}).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()

    def select_latency(self, samples: int, panel: str) -> dict[str, Any]:
        target = self.ev("(p) => window.qiluXr.controlPoint(p, 0)", panel)
        start = len(self.ev("window.xrStats.selectLatency"))
        for i in range(samples):
            self.ev("""async (t) => {
                const r = window.xrDevice.remote;
                await r.dispatch('look_at', { device: 'controller-right', target: t });
                await r.dispatch('set_select_value', { device: 'controller-right', value: 1 });
            }""", target)
            self.wait_for("(n) => window.xrStats.selectLatency.length > n", start + i)
            self.ev("window.xrDevice.remote.dispatch('set_select_value', { device: 'controller-right', value: 0 })")
            self.wait_frames(2)
        recs = self.ev("window.xrStats.selectLatency")[start:]
        return {"frames": summary([r["frames"] for r in recs]), "ms": summary([r["ms"] for r in recs]),
                "frames_each": [r["frames"] for r in recs]}

    def rest_latency(self, samples: int) -> dict[str, Any]:
        frames: list[float] = []
        for _ in range(samples):
            before = self.hub.state(LIGHT).value
            frame0 = self.frames()
            self.rest_toggle()
            drawn = self.wait_for("""([e, f, v]) => { const d = window.xrStats.stateDrawn[e];
                return d && d.frame > f && d.v !== v && d; }""", [LIGHT, frame0, before])
            frames.append(drawn["frame"] - frame0)
            self.wait_frames(2)
        return {"frames": summary(frames)}

    def cpu(self, frames: int, changing: bool) -> dict[str, Any]:
        self.ev("window.xrStats.cpuMs.length = 0")
        stop = threading.Event()

        def churn() -> None:  # a state change on one panel about every other frame at 60 Hz
            while not stop.is_set():
                self.rest_toggle()
                time.sleep(0.03)

        worker = threading.Thread(target=churn, daemon=True)
        if changing:
            worker.start()
        repaints0 = self.ev("window.xrStats.repaints")
        t0, f0 = time.monotonic(), self.frames()
        self.wait_for("(n) => window.xrStats.cpuMs.length >= n", frames, polls=20000)
        fps = (self.frames() - f0) / (time.monotonic() - t0)
        stop.set()
        if changing:
            worker.join(5)
        repaints = self.ev("window.xrStats.repaints")
        cpu = self.ev("window.xrStats.cpuMs.slice()")
        return {"ms_per_frame": summary(cpu), "fps": round(fps, 1),
                "panels_repainted": sorted(k for k in repaints if repaints[k] != repaints0.get(k))}


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubThread(Path(tmp) / "config")
        (Path(tmp) / "config" / "scenes" / "wall.yaml").write_text(twenty_panels())
        token = hub.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                context = browser.new_context()
                context.add_cookies([{"name": "qilu_token", "value": token, "url": hub.url}])
                context.route("**/xr/emulator/iwer.js",
                              lambda route: route.fulfill(path=str(IWER), content_type="text/javascript"))
                page = context.new_page()
                scripts: dict[str, bytes] = {}
                sent: dict[str, int] = {}  # bytes on the wire (compressed as the hub sent them)
                page.on("response", lambda r: scripts.__setitem__(r.url, r.body())
                        if r.url.endswith((".js", ".mjs")) and "/emulator/" not in r.url else None)
                page.on("requestfinished", lambda r: sent.__setitem__(r.url, r.sizes()["responseBodySize"])
                        if r.url.endswith((".js", ".mjs")) and "/emulator/" not in r.url else None)
                b = Bench(page, hub, token)
                first = []
                for i in range(args.entries):  # each on a freshly loaded page: no texture painted yet
                    if i:
                        b.leave()
                    b.open("wall")
                    first.append(b.enter())
                report["emulated_refresh_hz"] = round(b.cpu(60, False)["fps"], 1)
                report["select_to_drawn"] = b.select_latency(args.samples, "p0")
                report["rest_change_to_panel_updated"] = b.rest_latency(args.samples)
                report["cpu_20_panels_idle"] = b.cpu(args.cpu_frames, False)
                report["cpu_20_panels_one_changing"] = b.cpu(args.cpu_frames, True)
                report["first_meaningful_frame_ms"] = summary(first)
                raw = sum(len(body) for body in scripts.values())
                report["js_transferred"] = {
                    "files": len(scripts), "raw_bytes": raw, "sent_bytes": sum(sent.values()),
                    "gzip9_bytes": sum(len(gzip.compress(body, 9)) for body in scripts.values())}
                report["browser"] = browser.version
                browser.close()
        finally:
            hub.stop()
    return report


def median_of(runs: list[Any]) -> Any:
    """The median over runs of every number in the reports (same shape); other values from the first run."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_of([r[k] for r in runs]) for k in first if k != "frames_each"}
    if isinstance(first, int | float) and not isinstance(first, bool):
        return round(statistics.median(runs), 3)
    return first


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--cpu-frames", type=int, default=300)
    ap.add_argument("--entries", type=int, default=5)
    args = ap.parse_args()
    runs = [run_once(args) for _ in range(args.runs)]
    print(json.dumps({"median": median_of(runs), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
