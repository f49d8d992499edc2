"""XR test fixtures: the headless Monado runtime (built by scripts/build-monado.sh) and helpers.

The runtime is found through $QILU_MONADO_DIR or .cache/monado; if it is missing or outdated the fixture
builds it (the script is idempotent) instead of skipping: CI must exercise the real runtime."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.testbeds.ports import listen_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the checkout under test, not whatever is pip-installed


def monado_dir() -> Path:
    return Path(os.environ.get("QILU_MONADO_DIR") or ROOT / ".cache" / "monado")


def _pythonpath() -> str:
    """The bridge subprocess imports the code under test: the caller's PYTHONPATH (a worktree's .nsroot) first."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)


@pytest.fixture(scope="session")
def monado_env() -> dict[str, str]:
    d = monado_dir()
    # always ask the script: it returns at once when the cache is current, and rebuilds a cache made by an
    # older version of the script (e.g. one without the OpenGL client or the service variant)
    subprocess.run(["bash", str(ROOT / "scripts" / "build-monado.sh"), str(d)], check=True)
    # evaluate env.sh in bash so the tests use exactly what users source
    out = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(d / 'env.sh'))} && env -0"], check=True, capture_output=True
    ).stdout
    env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
    env["PYTHONPATH"] = _pythonpath()
    return env


@pytest.fixture
def service_env(monado_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Env for the out-of-process Monado (build-service): the IPC client runtime, and a private
    XDG_RUNTIME_DIR for the service's socket; $MONADO_SERVICE is the service binary."""
    d = monado_dir()
    out = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(d / 'env-service.sh'))} && env -0"], check=True, capture_output=True
    ).stdout
    env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
    env["PYTHONPATH"] = _pythonpath()
    run_dir = tmp_path / "xdg-run"
    run_dir.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(run_dir)
    return env


@pytest.fixture
def bridge_cmd() -> Callable[..., list[str]]:
    def make(hub_url: str, token: str, scene: Path, tmp: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "qilu_hub.xr_bridge",
            "xr",
            "--hub",
            hub_url,
            "--token",
            token,
            "--scene",
            str(scene),
            "--trace",
            str(tmp / "trace.jsonl"),
            "--placements",
            str(tmp / "placements.json"),
            *extra,
        ]

    return make


@pytest.fixture
def remote_env(monado_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    """Runtime env using Monado's REMOTE driver on a free port (so parallel runs do not collide)."""
    port = listen_port()
    cfg = tmp_path / "xdg" / "monado"
    cfg.mkdir(parents=True)
    (cfg / "config_v0.json").write_text(json.dumps({"remote": {"version": 0, "port": port, "view_count": 2}}))
    env = dict(monado_env, P_OVERRIDE_ACTIVE_CONFIG="remote", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    yield env, port
