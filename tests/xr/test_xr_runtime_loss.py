"""Runtime loss with a real runtime: Monado as a separate service (monado-service, built by
scripts/build-monado.sh into build-service). Killing the service mid-session makes every OpenXR call fail
with XR_ERROR_INSTANCE_LOST; the bridge must stop with exit code 7, not crash or hang. Without the service,
the bridge must say so and exit 4."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from qilu_hub.xr_bridge.runtime import EXIT_NO_RUNTIME, EXIT_RUNTIME_LOST
from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from tests.xr.xrhelpers import TraceReader

SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: p
        placement: {relative_to: stage, offset: [0.0, 1.3, -1.0]}
        controls:
          - {type: toggle, entity: light.living_room}
"""


def _start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # the service polls stdin (a key press quits it), so it needs a pipe, not /dev/null
        svc = subprocess.Popen([env["MONADO_SERVICE"]], env=env, stdin=subprocess.PIPE, stdout=out, stderr=out)
    sock = Path(env["XDG_RUNTIME_DIR"]) / "monado_comp_ipc"
    deadline = time.monotonic() + 30
    while not sock.exists():
        if svc.poll() is not None or time.monotonic() > deadline:
            svc.kill()
            raise AssertionError(f"monado-service did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return svc


@pytest.mark.parametrize("graphics", ["vulkan", "opengl"])
def test_killing_the_runtime_service_ends_the_bridge_with_runtime_lost(
    service_env: dict[str, str], bridge_cmd: Any, tmp_path: Path, graphics: str
) -> None:
    svc = _start_service(service_env, tmp_path / "service.log")
    ht = DevHubThread(DevHub("t", ["light.living_room"]))
    port = ht.start()
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    cmd = bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "t", scene, tmp_path, "--graphics", graphics)
    with (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(cmd, env=service_env, stderr=err)
    tr = TraceReader(tmp_path / "trace.jsonl", proc)
    try:
        tr.wait(lambda e: e["ev"] == "session_state" and e["state"] == "FOCUSED", "session FOCUSED via the service")
        tr.wait(lambda e: e["ev"] == "submit", "a panel submitted through the service")
        svc.send_signal(signal.SIGKILL)
        svc.wait(10)
        code = proc.wait(timeout=30)
        assert code == EXIT_RUNTIME_LOST, (tmp_path / "stderr.log").read_text()[-2000:]
        tr._read()
        lost = [e for e in tr.events if e["ev"] in ("runtime_lost", "instance_loss_pending")]
        assert lost and lost[0].get("error", "InstanceLostError") == "InstanceLostError", lost
        assert "Traceback" not in (tmp_path / "stderr.log").read_text()
    finally:
        for p in (proc, svc):
            if p.poll() is None:
                p.kill()
                p.wait()
        ht.stop()


def test_runtime_service_not_running_is_a_missing_runtime(
    service_env: dict[str, str], bridge_cmd: Any, tmp_path: Path
) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    r = subprocess.run(
        bridge_cmd("ws://127.0.0.1:9/api/stream", "t", scene, tmp_path),
        env=service_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == EXIT_NO_RUNTIME, r.stderr[-2000:]
    assert "start it first" in r.stderr and "Traceback" not in r.stderr
