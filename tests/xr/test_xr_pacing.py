"""Frame pacing as the runtime reports it: the test runtime paces at a headset's 90 Hz (scripts/build-monado.sh
patches Monado's null compositor, which upstream fixes at 20 Hz), and the bridge counts the display periods that
went by without a frame from it (its `frames` trace event at exit; bench/xr.py reports the same counters)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from tests.xr.xrhelpers import ONE_TOGGLE_SCENE as SCENE
from tests.xr.xrhelpers import TraceReader

STALL_S = 0.25  # the bridge (and the in-process runtime with it) stopped this long: about 22 periods at 90 Hz


def test_runtime_paces_at_90_hz_and_a_stalled_bridge_counts_missed_frames(
        monado_env: dict[str, str], bridge_cmd: Any, tmp_path: Path) -> None:
    assert monado_env.get("XRT_COMPOSITOR_NULL_FPS") == "90"
    hub = DevHub("t", ["light.living_room"])
    ht = DevHubThread(hub)
    port = ht.start()
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    cmd = bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "t", scene, tmp_path, "--max-frames", "270")
    proc = subprocess.Popen(cmd, env=monado_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        tr = TraceReader(tmp_path / "trace.jsonl", proc)
        tr.wait(lambda e: e.get("ev") == "session_state" and e.get("state") == "FOCUSED", "session focused")
        tr.wait(lambda e: e.get("ev") == "snapshot", "subscribed to the hub")
        # a change the bridge takes in inside a frame: the frame loop is running, with a display time to count from
        ht.run(hub.set_state("light.living_room", "on"))
        tr.wait(lambda e: e.get("ev") == "state" and e.get("value") == "on", "the change taken in by a frame")
        # as if the scheduler took the CPU away: every display period while stopped passes without a frame
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(STALL_S)
        os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
        frames = tr.wait(lambda e: e.get("ev") == "frames", "frame statistics at exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        ht.stop()
    assert frames["refresh_period_ns"] == 1_000_000_000 // 90, frames
    assert frames["frames"] >= 270  # --max-frames, plus the frames while the session winds down
    # the stall alone skips about STALL_S * 90 periods; preemption on a busy machine can only add to that
    assert frames["missed"] >= int(STALL_S * 90) // 2, frames
    assert frames["frames_after_a_miss"] >= 1
