"""Household dashboard benchmark: the hub's / page in Debian's headless Chromium at phone size (390x844), against a
real hub with the virtual appliances (the test bed of tests/xr_web). Prints JSON.

  python bench/dashboard.py [--runs 5] [--samples 20]

1. bytes: the dashboard's files (HTML, CSS, JavaScript) as the hub sends them, and what gzip -9 would make of them.
2. first tiles: from the sign-in form's submit to the first device tile drawn with its live state, in ms (one fresh
   browser context per run: no cache); and to the "live" badge (the WebSocket ticket, auth, subscriptions).
3. change -> tile: a state set on the hub until the tile's text shows it, in ms (includes one Playwright round trip,
   so it errs high); median over --samples changes per run.
"medians" holds the median over runs of every figure, "runs" each run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.xr_web.hubbed import LIGHT, PLUG, HubThread  # noqa: E402

STATIC = ROOT / "hub" / "api" / "static"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def static_bytes() -> dict[str, int]:
    files = [p for p in sorted(STATIC.iterdir()) if p.suffix in (".html", ".css", ".js")]
    raw = b"".join(p.read_bytes() for p in files)
    return {"files": len(files), "raw": len(raw), "gzip_9": len(gzip.compress(raw, 9))}


def one_run(hub: HubThread, token: str, browser: Any, samples: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    page = context.new_page()
    page.goto(hub.url + "/")
    page.get_by_test_id("login-token").fill(token)
    start = time.perf_counter()
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector(f'[data-testid="state-{LIGHT}"]:not(:text("—"))')
    first_tile = (time.perf_counter() - start) * 1000
    page.get_by_test_id("connection").filter(has_text="live").wait_for()
    live = (time.perf_counter() - start) * 1000
    delays = []
    for i in range(samples):
        value = "on" if i % 2 == 0 else "off"
        text = "On" if value == "on" else "Off"
        t0 = time.perf_counter()
        hub.call(lambda v=value: hub.hub.states.async_set(PLUG, v))
        page.wait_for_function("([id, text]) => document.querySelector(`[data-testid=\"state-${id}\"]`)"
                               "?.textContent === text", arg=[PLUG, text])
        delays.append((time.perf_counter() - t0) * 1000)
    context.close()
    return {"first_tile_ms": round(first_tile, 1), "live_ms": round(live, 1),
            "change_to_tile_ms": round(statistics.median(delays), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubThread(Path(tmp))
        token = hub.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for _ in range(args.runs):
                        runs.append(one_run(hub, token, browser, args.samples))
                finally:
                    browser.close()
        finally:
            hub.stop()
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({"bytes": static_bytes(), "viewport": "390x844", "runs": runs, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
