"""Ports for servers that the tests start as other programs (Monado's remote driver, Mosquitto).

Asking the kernel for port 0 and handing the number to another program leaves a gap between the two binds. The
kernel hands out the same range for outgoing connections, and a busy suite opens many: under load one of them
took a Monado remote port in that gap (the runtime then never listened, and the test failed with
ConnectionRefused). A random port below that range is never given to an outgoing connection, so only another
listener could take it, and the check below sees listeners.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["listen_port"]

_FLOOR = 10000  # above the ports distributions give to well-known services


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def listen_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on, outside the range used for outgoing connections."""
    high = _ephemeral_low()
    if high - _FLOOR < 1000:  # a machine that gives almost every port to outgoing connections
        with socket.socket() as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(_FLOOR, high)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_FLOOR} and {high} on {host}")
