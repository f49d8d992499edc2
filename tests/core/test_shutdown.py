"""SIGTERM gives a clean shutdown that flushes history; SIGINT too."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_flushes(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  port: 0\nrecorder:\n  commit_interval: 3600\n")
    proc = subprocess.Popen([sys.executable, "-m", "qilu_hub", "--config", str(tmp_path), "demo"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if "started with" in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0
    conn = sqlite3.connect(tmp_path / "history.db")
    # With an hour-long commit interval, only the shutdown flush can have written these.
    rows = conn.execute("SELECT count(*) FROM states").fetchone()[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert rows >= 5
    assert not (tmp_path / "history.db-wal").exists() or (tmp_path / "history.db-wal").stat().st_size == 0
