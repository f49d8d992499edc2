"""An emulated LAN of network namespaces joined by veth pairs to a bridge (needs root).

``EmulatedLan(prefix, subnet, hosts)`` builds, on ``create()``:
a bridge ``br0`` in namespace ``<prefix>lan``, the hub host ``<prefix>hub`` at
``<subnet>.1`` and appliance hosts ``<prefix>app1..N`` at ``<subnet>.11..``, each
joined by a veth pair whose bridge end is in the LAN namespace. Multicast between
the hosts is real kernel multicast; nothing touches the machine's own interfaces.
Namespace names carry the process id and a counter after the prefix, so two suites on one
machine (two checkouts, or a developer's run beside CI) never share or delete each other's
namespaces. ``remove()`` deletes every namespace it made; ``create()`` first deletes those
left behind by a killed run (same prefix, a process that no longer exists).

``in_netns(name)`` switches the *calling thread* into a namespace for the duration
of a ``with`` block, so sockets created inside (an ``AsyncZeroconf``) live there
while the event loop keeps running in the original thread. ``popen(ns, argv)``
starts a process in a namespace.

Pick a prefix per area (discovery uses ``qd-``); addresses are private to the LAN's own
namespaces, so the subnet (discovery: 10.78.0.0/24) cannot meet another run's.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
_LANS = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def can_build() -> str | None:
    """None when namespaces can be built here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs as root)"
    if shutil.which("ip") is None:
        return "needs the 'ip' command (iproute2)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with this thread in network namespace ``name`` (created by ``ip netns add``)."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)


def popen(ns: str, argv: list[str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], text=True, **kwargs)  # type: ignore[call-overload]


@dataclass
class EmulatedLan:
    prefix: str = "qd-"
    subnet: str = "10.78.0"
    hosts: int = 2
    namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.area = self.prefix
        self.prefix = f"{self.area}{os.getpid()}x{next(_LANS)}-"

    @property
    def lan(self) -> str:
        return f"{self.prefix}lan"

    @property
    def hub(self) -> str:
        return f"{self.prefix}hub"

    @property
    def hub_address(self) -> str:
        return f"{self.subnet}.1"

    def app(self, i: int) -> str:
        return f"{self.prefix}app{i}"

    def app_address(self, i: int) -> str:
        return f"{self.subnet}.{10 + i}"

    def create(self) -> EmulatedLan:
        self.remove_stale()
        self.remove()
        _ip("netns", "add", self.lan)
        self.namespaces.append(self.lan)
        _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan, "link", "set", "br0", "up")
        members = [(self.hub, self.hub_address)]
        members += [(self.app(i), self.app_address(i)) for i in range(1, self.hosts + 1)]
        for n, (ns, address) in enumerate(members):
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            # Create the pair inside the host namespace so no interface ever appears in the machine's own.
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"port{n}", "netns", self.lan)
            _ip("-n", self.lan, "link", "set", f"port{n}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        return self

    def add_address(self, ns: str, address: str) -> None:
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")

    def remove(self) -> None:
        names = {self.lan, self.hub, *self.namespaces}
        names |= {self.app(i) for i in range(1, self.hosts + 1)}
        for ns in sorted(names):
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()

    def remove_stale(self) -> None:
        """Delete this area's namespaces whose process is gone (a run killed before its clean-up)."""
        pattern = re.compile(re.escape(self.area) + r"(\d+)x\d+-")
        for line in _ip("netns", "list", check=False).stdout.splitlines():
            name = line.split(" ", 1)[0]
            match = pattern.match(name)
            if match and not os.path.exists(f"/proc/{match.group(1)}"):
                _ip("netns", "del", name, check=False)

    def __enter__(self) -> EmulatedLan:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()
