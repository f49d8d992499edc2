"""The qilu-xr JavaScript client library, tested with `node --test` against a real hub (the library's own tests are
tests/xr_web/client.test.mjs; this runs them with the hub's address and a token)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .hubbed import HubThread

HERE = Path(__file__).parent
NODE = shutil.which("node")


def node_has_websocket() -> bool:
    """Node >= 20.10 has a WebSocket client (behind --experimental-websocket before 22)."""
    if NODE is None:
        return False
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    return (major, minor) >= (20, 10)


@pytest.mark.skipif(not node_has_websocket(), reason="needs node >= 20.10 (its WebSocket client)")
def test_client_library_with_node(tmp_path: Path) -> None:
    ht = HubThread(tmp_path / "config")
    token = ht.start()
    try:
        env = {**os.environ, "QILU_HUB_URL": ht.url, "QILU_HUB_TOKEN": token}
        # Node 20 has WebSocket behind a flag (Node 22 without); the flag is harmless where it is the default
        proc = subprocess.run([NODE, "--experimental-websocket", "--test", "--test-reporter=tap",
                               str(HERE / "client.test.mjs")], env=env, capture_output=True, text=True, timeout=60)
    finally:
        ht.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^# pass 4$", out, re.M) and re.search(r"^# skipped 0$", out, re.M), out
