"""Every command the README and docs/*.md give to run, run as written against a fresh `qilu-hub demo --keep`.

The convention (docs/dashboard.md, "Documented commands"): a fenced block tagged ``sh`` holds commands to type,
one per line (a trailing backslash continues it), each of which must exit 0; synopses with placeholders and
brackets go in untagged blocks, which are not run. ``DIR`` in a command stands for a config directory and runs
as the kept demo's. A command that cannot run here is listed in ``NOT_RUN`` with the reason (installing,
systemd, hardware, hours of runtime, serving until stopped); a listed command that is no longer in the docs
fails the test, so the list cannot rot.

The commands run in a scratch copy of a clone: a working directory whose entries link to the repository's,
``.venv`` linking to the running interpreter's environment, and ``HOME``/``XDG_CONFIG_HOME`` inside it, so the
default config directory is a fresh one and nothing of the user's is read or written. The README's
``qilu-hub demo --keep demo-home &`` starts the demo the others run against; the test adds ``--port N`` (a
free port) so that it never takes the fixed 8123. Then the follow-up commands the demo prints run too.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEMO = re.compile(r"^(?P<cmd>.*qilu-hub demo --keep (?P<dir>\S+))\s*&$")
COMMAND_TIMEOUT = 120  # bounds a hung command; not a speed check

# Commands in `sh` blocks that this test does not run, each with why.
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/qilu-hub demo":
        "installs the package from the network (scripts/test.sh does so in CI) and runs a demo until Ctrl-C",
    ".venv/bin/qilu-hub run": "serves until stopped, on the fixed port 8123 (tests/core/test_cli*.py start it)",
    ".venv/bin/qilu-hub run -v --port 8124": "serves until stopped, on a fixed port",
    ".venv/bin/qilu-hub simulate fridge": "serves until stopped (tests/drivers run the simulators)",
    ".venv/bin/qilu-hub firmware-test --host 127.0.0.1 --port PORT":
        "needs an appliance at PORT (tests/firmware_tests run the kit against the simulators)",
    ".venv/bin/qilu-hub firmware-test --ble AA:BB:CC:DD:EE:FF": "needs BLE hardware",
    ".venv/bin/qilu-hub firmware-test --matter MT:... --matter-venv DIR":
        "needs a Matter appliance's setup code on an IPv6 LAN (tests/firmware_tests/test_matter_kit.py runs the kit)",
    "bash scripts/test.sh": "the whole test suite, with its set-up",
    "bash scripts/clock-check.sh": "reruns the clock-sensitive tests at eight moments (minutes)",
    "bash scripts/clock-check.sh 2026-12-06T00:49@UTC 2026-10-25T02:30@Europe/Berlin": "as above",
    ".venv/bin/pip install -e '.[fuzz]'": "installs packages from the network",
    ".venv/bin/python fuzz/run.py --all --seconds 150": "a fuzzing run (minutes)",
    ".venv/bin/python scripts/reliability/crash_loop.py --rounds 200": "a reliability run (minutes)",
    ".venv/bin/python scripts/reliability/soak.py --minutes 60": "a reliability run (an hour)",
    ".venv/bin/python scripts/reliability/soak.py --minutes 60 --tick 0.1 --time-scale 600 --call-scale 10":
        "a reliability run (an hour)",
    "qilu-hub --config DIR backup restore ARCHIVE":
        "needs the hub stopped and an archive's path (tests/core/test_backup*.py restore into a wiped directory)",
    "qilu-hub --config DIR model train --source recorder --only-if-better --out DIR/home.onnx":
        "needs days of household labels (tests/recognition/test_model_cli.py trains from a recorder)",
    "qilu-hub --config DIR model train --source recorder --review --per-device --forest leaf20_48trees "
    "--out DIR/home_review.onnx": "needs days of household labels (as above)",
    "pip install 'qilu-hub[xr]'": "installs packages from the network",
    "adb reverse tcp:8123 tcp:8123": "needs a headset or phone on USB in developer mode",
    "qilu-hub xr --hub ws://HUB:8123/api/stream --token TOKEN --scene scenes/examples/living_room.yaml":
        "needs an OpenXR runtime and a headset (tests/xr run the client against a simulated runtime)",
}
# docs/install.md's blocks install system-wide with sudo, write systemd units and build container images.
NOT_RUN_FILES = {"install.md": "installs system-wide (sudo, systemd, a container build): tests/core/"
                               "test_gateway_install.py checks the unit and the image definition"}


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of every ``sh`` block, continuations joined, comments dropped."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for block in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
            line_no = text[:block.start()].count("\n") + 2
            joined = re.sub(r"\\\n\s*", "", block.group(1))
            for offset, line in enumerate(joined.splitlines()):
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    found.append((f"{path.relative_to(ROOT)}:{line_no + offset}", command))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    work = tmp_path / "clone"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {".venv", ".git"}:
            (work / entry.name).symlink_to(entry)
    (work / ".venv").symlink_to(Path(sys.prefix))
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("QILU_HUB_CONFIG", "QILU_HUB_TOKEN", "QILU_TOKEN"):
        env.pop(name, None)
    yield work, env


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)


def test_every_documented_command_runs_against_a_fresh_demo(clone: tuple[Path, dict[str, str]]) -> None:
    work, env = clone
    assert (Path(sys.prefix) / "bin" / "qilu-hub").exists(), "run the tests from the project's virtual environment"
    commands = documented_commands()
    texts = {command for _, command in commands}
    assert sorted(set(NOT_RUN) - texts) == [], "NOT_RUN lists commands the docs no longer have"
    demos = [m for _, command in commands if (m := DEMO.match(command))]
    assert demos, "the README starts a demo with --keep for its follow-up commands"
    demo = demos[0]
    demo_dir = demo.group("dir")
    args = [*shlex.split(demo.group("cmd")), "--port", str(_free_port())]
    process = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    printed: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while time.monotonic() < deadline:  # the demo prints its follow-ups once its API listens
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line.rstrip("\n"))
            if "qilu-hub label list" in line:
                break
        assert any("try in another terminal" in p for p in printed), "\n".join(printed)
        follow_ups = [p.strip() for p in printed if p.startswith("  ") and "qilu-hub" in p]
        assert follow_ups, printed
        failures = []
        ran = 0
        to_run = [(w, c) for w, c in commands
                  if c not in NOT_RUN and not DEMO.match(c) and Path(w.split(":")[0]).name not in NOT_RUN_FILES]
        to_run += [("printed by the demo", c) for c in follow_ups]
        for place, command in to_run:
            text = re.sub(r"\bDIR\b", demo_dir, command)
            result = _run(text, work, env)
            ran += 1
            if result.returncode != 0:
                said = (result.stderr or result.stdout)[-600:]
                failures.append(f"{place}: {text}\n  exit {result.returncode}: {said}")
        assert failures == [], "\n".join(failures)
        assert ran >= 10
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the README says
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
