"""matter-server as the hub's companion: installed into its own venv, started and supervised by the hub.

python-matter-server's ``[server]`` extra pins aiohttp, zeroconf and the CHIP SDK wheel at versions that must
not enter the hub's environment, so the server lives in a venv of its own (:func:`install`, behind
``qilu-hub matter server install``), as Home Assistant runs it as an add-on. :class:`ManagedServer` starts it
with its storage under the hub's config folder, waits until it says it is ready, restarts it with backoff when
it dies, and stops it with the hub. What goes wrong says what to do: a missing venv names the install
command; a venv with another version names the version wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path

from .settings import MatterSettings

_LOGGER = logging.getLogger(__name__)

SERVER_VERSION = "7.0.1"  # the newest python-matter-server that runs on Python 3.11 (CHIP SDK 2024.11.4)
SERVER_REQUIREMENT = f"python-matter-server[server]=={SERVER_VERSION}"  # scripts/setup-matter.sh pins the same
READY_LINE = "Matter Server successfully initialized"
START_TIMEOUT = 90.0
RESTART_BACKOFF = (1.0, 60.0)
LOG_TAIL = 40


class ServerUnavailable(RuntimeError):
    """matter-server cannot be started or reached; the message says what to do."""


def server_executable(venv: Path) -> Path:
    return venv / "bin" / "matter-server"


def installed_version(venv: Path) -> str | None:
    """The python-matter-server version in ``venv``, or None when it is not installed there."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    script = "import importlib.metadata as m; print(m.version('python-matter-server'))"
    probe = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False)
    return probe.stdout.strip() or None if probe.returncode == 0 else None


def check_installed(venv: Path) -> None:
    """Raise :class:`ServerUnavailable` unless ``venv`` holds the matter-server version this hub speaks to."""
    version = installed_version(venv)
    if version is None or not server_executable(venv).exists():
        raise ServerUnavailable(f"matter-server is not installed in {venv}: run `qilu-hub matter server install`")
    if version != SERVER_VERSION:
        raise ServerUnavailable(f"matter-server {version} in {venv} is not the version this hub uses "
                                f"({SERVER_VERSION}): run `qilu-hub matter server install` to replace it")


def install(venv: Path, python: str | None = None) -> str:
    """Create ``venv`` (if needed) and install the pinned server into it; returns the installed version."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    SERVER_REQUIREMENT], check=True)
    check_installed(venv)
    return SERVER_VERSION


def server_argv(settings: MatterSettings, storage: Path) -> list[str]:
    assert settings.venv is not None
    # Loopback only: matter-server's WebSocket has no authentication, and whoever reaches it controls every node.
    argv = [str(server_executable(settings.venv)), "--storage-path", str(storage), "--port", str(settings.port),
            "--listen-address", "127.0.0.1", "--log-level", settings.log_level, "--log-level-sdk", "error"]
    if settings.primary_interface:
        argv += ["--primary-interface", settings.primary_interface]
    if settings.paa_root_cert_dir is not None:
        argv += ["--paa-root-cert-dir", str(settings.paa_root_cert_dir)]
    if settings.bluetooth_adapter is not None:
        argv += ["--bluetooth-adapter", str(settings.bluetooth_adapter)]
    return argv


class ManagedServer:
    """One matter-server process, restarted with backoff while the hub runs."""

    def __init__(self, settings: MatterSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir  # storage (fabric, nodes) lives in data_dir/storage
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.log_tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def async_start(self) -> None:
        """Start the server and wait until it is ready; ServerUnavailable says why it could not be."""
        assert self.settings.venv is not None
        await asyncio.to_thread(check_installed, self.settings.venv)
        await self._spawn()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="matter-server")

    async def _spawn(self) -> None:
        storage = self.data_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ready.clear()
        # The server writes OTA files to ./updates: run it in its own folder, not wherever the hub was started.
        self.process = await asyncio.create_subprocess_exec(
            *server_argv(self.settings, storage), cwd=self.data_dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        reader = asyncio.get_running_loop().create_task(self._read_log(self.process), name="matter-server-log")
        ready = asyncio.get_running_loop().create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait({ready, reader}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._ready.is_set():
            await self._kill()
            tail = "\n".join(list(self.log_tail)[-10:])
            raise ServerUnavailable(f"matter-server did not start ({'exited' if reader in done else 'timed out'}); "
                                    f"last lines of its log:\n{tail}")
        _LOGGER.info("matter-server %s ready (pid %s, ws port %s)", SERVER_VERSION, self.pid, self.settings.port)

    async def _read_log(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log_tail.append(line)
            if READY_LINE in line:
                self._ready.set()
            _LOGGER.debug("matter-server: %s", line)

    async def _supervise(self) -> None:
        delay = RESTART_BACKOFF[0]
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            _LOGGER.warning("matter-server exited with %s; restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
                self.restarts += 1
                delay = RESTART_BACKOFF[0]
            except ServerUnavailable as err:
                _LOGGER.error("%s", err)
                delay = min(delay * 2, RESTART_BACKOFF[1])

    async def async_stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self._kill()

    async def _kill(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
