"""The kit across a real LAN: appliance and hub in separate network namespaces on a bridge, real multicast mDNS.

Namespaces qv-lan (bridge), qv-hub 10.79.0.1 and qv-app 10.79.0.11; needs root (CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.netns


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def lan() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0:
        pytest.fail("network-namespace tests need root (CI runs as root)")
    tag = uuid.uuid4().hex[:4]
    lan_ns, hub_ns, app_ns = f"qv-lan-{tag}", f"qv-hub-{tag}", f"qv-app-{tag}"
    ip("netns", "add", lan_ns)
    try:
        ip("-n", lan_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", lan_ns, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(((hub_ns, "10.79.0.1"), (app_ns, "10.79.0.11")), start=1):
            ip("netns", "add", ns)
            veth, port = f"qv{tag}v{i}", f"qv{tag}p{i}"
            ip("link", "add", veth, "type", "veth", "peer", "name", port)
            ip("link", "set", veth, "netns", ns)
            ip("link", "set", port, "netns", lan_ns)
            ip("-n", lan_ns, "link", "set", port, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", veth)
            ip("-n", ns, "link", "set", veth, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield hub_ns, app_ns
    finally:
        for ns in (hub_ns, app_ns, lan_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_kit_checks_an_appliance_on_another_host(lan: tuple[str, str]) -> None:
    hub_ns, app_ns = lan
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    sim = subprocess.Popen(["ip", "netns", "exec", app_ns, sys.executable, "-m", "qilu_hub", "simulate",
                            "air_conditioner",
                            "--bind", "10.79.0.11", "--seconds", "90"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        assert "10.79.0.11:" in line, line
        result = subprocess.run(["ip", "netns", "exec", hub_ns, sys.executable, "-m", "qilu_hub", "firmware-test",
                                 "--host", "10.79.0.11"], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "CONFORMS: 9 passed" in result.stdout
    finally:
        sim.terminate()
        sim.wait(10)
