"""``qilu-hub simulate`` and ``qilu-hub firmware-test`` as a maker runs them: two processes, real mDNS."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest


def start_simulator(kind: str, variant: str = "ok") -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "qilu_hub", "simulate", kind, "--variant", variant, "--seconds",
                             "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "fridge: qoap-fridge-NNNN on 127.0.0.1:PORT" (NNNN: unique per run)
    host, port = line.rsplit(" ", 1)[1].strip().split(":")
    return proc, host, int(port)


@pytest.mark.parametrize(("variant", "code", "words"), [("ok", 0, "CONFORMS"), ("silent", 1, "no state notification")])
def test_firmware_test_cli(tmp_path: Path, variant: str, code: int, words: str) -> None:
    proc, host, port = start_simulator("fridge", variant)
    try:
        junit, html = tmp_path / "kit.xml", tmp_path / "kit.html"
        result = subprocess.run([sys.executable, "-m", "qilu_hub", "firmware-test", "--host", host, "--port", str(port),
                                 "--bound", "1", "--junit", str(junit), "--report", str(html)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == code, result.stdout + result.stderr
        assert words in result.stdout
        assert "[1/9]" in result.stderr and "[9/9]" in result.stderr  # progress while it runs
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None and suite.get("tests") == "9"
        assert html.read_text().startswith("<!doctype html>")
    finally:
        proc.terminate()
        proc.wait(10)


def test_simulate_rejects_bad_arguments() -> None:
    result = subprocess.run([sys.executable, "-m", "qilu_hub", "simulate", "fridge", "--count", "0"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--count" in result.stderr
    result = subprocess.run([sys.executable, "-m", "qilu_hub", "firmware-test", "--host", "127.0.0.1",
                             "--profile", "zigbee"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown profile" in result.stderr
