"""The bridge's failure modes end with a clear message and a distinct exit code."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from qilu_hub.xr_bridge.runtime import EXIT_AUTH, EXIT_NO_GRAPHICS, EXIT_NO_RUNTIME, EXIT_SCENE
from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from tests.xr.xrhelpers import ONE_TOGGLE_SCENE as SCENE


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_missing_runtime_has_its_own_exit_code(monado_env: dict[str, str], bridge_cmd: Any, tmp_path: Path) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    env = dict(monado_env, XR_RUNTIME_JSON=str(tmp_path / "no-such-runtime.json"))
    r = _run(bridge_cmd("ws://127.0.0.1:9/api/stream", "t", scene, tmp_path), env)
    assert r.returncode == EXIT_NO_RUNTIME, r.stderr
    assert "no OpenXR runtime found" in r.stderr


def test_opengl_without_a_usable_egl_has_its_own_exit_code(
    monado_env: dict[str, str], bridge_cmd: Any, tmp_path: Path
) -> None:
    """--graphics opengl on a machine whose EGL has no driver (glvnd pointed at no vendor): a clear message and
    exit 6 after the runtime was reached, not a crash."""
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    env = dict(monado_env, __EGL_VENDOR_LIBRARY_FILENAMES=str(tmp_path / "no-vendor.json"))
    r = _run(bridge_cmd("ws://127.0.0.1:9/api/stream", "t", scene, tmp_path, "--graphics", "opengl"), env)
    assert r.returncode == EXIT_NO_GRAPHICS, r.stderr[-2000:]
    assert "OpenGL path: eglGetDisplay failed" in r.stderr and "Traceback" not in r.stderr


def test_invalid_scene_is_refused_with_file_and_line(
    monado_env: dict[str, str], bridge_cmd: Any, tmp_path: Path
) -> None:
    scene = tmp_path / "bad.yaml"
    scene.write_text(SCENE.replace("type: toggle", "type: knob"))
    r = _run(bridge_cmd("ws://127.0.0.1:9/api/stream", "t", scene, tmp_path), monado_env)
    assert r.returncode == EXIT_SCENE
    assert f"{scene}:8:" in r.stderr and "knob" in r.stderr


def test_unknown_entity_refused_once_the_hub_snapshot_arrives(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    env, _ = remote_env
    ht = DevHubThread(DevHub("t", ["light.kitchen"]))
    port = ht.start()
    try:
        scene = tmp_path / "s.yaml"
        scene.write_text(SCENE)
        r = _run(bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "t", scene, tmp_path), env)
    finally:
        ht.stop()
    assert r.returncode == EXIT_SCENE, r.stderr
    assert f"{scene}:8: unknown entity 'light.living_room'" in r.stderr


def test_refused_token_ends_the_bridge(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    env, _ = remote_env
    ht = DevHubThread(DevHub("right", ["light.living_room"]))
    port = ht.start()
    try:
        scene = tmp_path / "s.yaml"
        scene.write_text(SCENE)
        r = _run(bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "wrong", scene, tmp_path), env)
    finally:
        ht.stop()
    assert r.returncode == EXIT_AUTH, r.stderr
    assert "refused the token" in r.stderr


def test_token_from_qilu_hub_token_the_variable_label_reads(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    env, _ = remote_env
    ht = DevHubThread(DevHub("right", ["light.kitchen"]))
    port = ht.start()
    try:
        scene = tmp_path / "s.yaml"
        scene.write_text(SCENE)
        cmd = bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "unused", scene, tmp_path)
        at = cmd.index("--token")
        del cmd[at:at + 2]  # the token comes from the environment only
        env = {k: v for k, v in env.items() if k != "QILU_TOKEN"}
        r = _run(cmd, {**env, "QILU_HUB_TOKEN": "right"})
    finally:
        ht.stop()
    # The hub accepted the token and sent its snapshot: the scene is then refused for its unknown entity.
    assert r.returncode == EXIT_SCENE, r.stderr
    assert "unknown entity 'light.living_room'" in r.stderr and "refused the token" not in r.stderr


def test_cli_module_registers_the_xr_subcommand() -> None:
    import argparse

    from qilu_hub.cli import xr

    ap = argparse.ArgumentParser()
    xr.register(ap.add_subparsers())
    args = ap.parse_args(["xr", "--hub", "ws://h/api/stream", "--token", "t", "--scene", "s.yaml"])
    assert args.func is xr.handler and args.scene == Path("s.yaml")


@pytest.mark.parametrize(
    "given,url",
    [
        ("ws://h:8123/api/stream", "ws://h:8123/api/stream"),
        ("http://h:8123", "ws://h:8123/api/stream"),
        ("https://h:8123/", "wss://h:8123/api/stream"),
        ("h:8123", "ws://h:8123/api/stream"),
    ],
)
def test_hub_url_forms(given: str, url: str) -> None:
    from qilu_hub.cli.xr import stream_url

    assert stream_url(given) == url
