"""Test helper: drive Monado's REMOTE driver (simulated HMD + Index-like controllers) over TCP.

Wire format (Monado 25, struct r_remote_data): after connecting, the runtime sends two 376-byte packets
(reset state, latest state); every 376-byte packet we send replaces the whole device state. Little-endian:
header 8s | head 128 bytes | left controller 120 | right controller 120; a controller is
pose 7f (qx,qy,qz,qw,px,py,pz) | lin vel 3f | ang vel 3f | hand curl 5f | trigger, squeeze, squeeze force f |
thumbstick 2f | trackpad force f | trackpad 2f | 16 bools (hand_tracking_active, active, system_click,
system_touch, a_click, a_touch, b_click, b_touch, trigger_click, trigger_touch, thumbstick_click,
thumbstick_touch, trackpad_touch, 3 x pad). Positions are in the runtime's stage space."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

PACKET = struct.Struct("<8s128s120s120s")
CTRL = struct.Struct("<7f3f3f5f3f2ff2f16?")
BOOLS = (
    "hand_tracking_active",
    "active",
    "system_click",
    "system_touch",
    "a_click",
    "a_touch",
    "b_click",
    "b_touch",
    "trigger_click",
    "trigger_touch",
    "thumbstick_click",
    "thumbstick_touch",
    "trackpad_touch",
)
assert PACKET.size == 376 and CTRL.size == 120


class Controller:
    def __init__(self, raw: bytes) -> None:
        v = list(CTRL.unpack(raw))
        self.floats: list[float] = v[:26]
        self.flags: list[bool] = v[26:]

    def set(self, name: str, value: bool) -> None:
        self.flags[BOOLS.index(name)] = value

    def pack(self) -> bytes:
        return CTRL.pack(*self.floats, *self.flags)


class RemoteClient:
    def __init__(self, port: int, host: str = "127.0.0.1", connect_timeout: float = 20.0) -> None:
        deadline = time.monotonic() + connect_timeout
        while True:  # the runtime starts listening once the app created its instance
            try:
                self.sock = socket.create_connection((host, port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._recv(PACKET.size)  # reset state
        _, self.head, left, right = PACKET.unpack(self._recv(PACKET.size))
        self.left, self.right = Controller(left), Controller(right)

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("runtime closed the remote connection")
            buf += chunk
        return buf

    def right_hand(
        self,
        position: Any = None,
        orientation: Any = None,
        trigger: bool | None = None,
        squeeze: bool | None = None,
        menu: bool | None = None,
    ) -> None:
        r = self.right
        if orientation is not None:
            r.floats[0:4] = list(orientation)
        if position is not None:
            r.floats[4:7] = list(position)
        if trigger is not None:
            r.floats[18] = 1.0 if trigger else 0.0
            r.set("trigger_click", trigger)
            r.set("trigger_touch", trigger)
        if squeeze is not None:
            r.floats[19] = 1.0 if squeeze else 0.0
        if menu is not None:  # Index "b" button: the bridge's menu action
            r.set("b_click", menu)
        r.set("active", True)
        self.sock.sendall(PACKET.pack(b"mndrmt3\0", self.head, self.left.pack(), r.pack()))

    def close(self) -> None:
        self.sock.close()
