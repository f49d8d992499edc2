"""Panels placed by the hub's device poses and area frames (xr_bridge.core / placement / stream): the stream's
poses messages move device- and area-relative panels; the placements file overrides; bad poses cost nothing."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
from aiohttp import web

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.core import BridgeCore
from qilu_hub.xr_bridge.geometry import Pose, yaw_quat
from qilu_hub.xr_bridge.placement import PlacementStore
from qilu_hub.xr_bridge.stream import StreamClient, StreamEvent

SCENE = """\
version: 1
immersive_scenes:
  - name: room
    panels:
      - id: by_lamp
        placement: {relative_to: device, ref: dev1, offset: [0.0, 0.5, 0.0]}
        controls:
          - {type: toggle, entity: light.a}
      - id: in_room
        placement: {relative_to: area, ref: living_room, offset: [1.0, 1.2, 0.0], yaw: 90}
        controls:
          - {type: readout, entity: sensor.t}
      - id: fixed
        placement: {relative_to: stage, offset: [0.0, 1.0, -1.0]}
        controls:
          - {type: toggle, entity: light.a}
"""


def core(store: PlacementStore | None = None) -> BridgeCore:
    return BridgeCore(parse_scene_text(SCENE).immersive(), store or PlacementStore(None), lambda *a: None)


def close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


def pose(x: float, y: float, z: float, **q: float) -> dict[str, Any]:
    return {"x": x, "y": y, "z": z, "qx": 0.0, "qy": 0.0, "qz": 0.0, "qw": 1.0, "frame": "home", **q}


SNAP = StreamEvent("snapshot", {"light.a": {"v": "off", "a": {}}, "sensor.t": {"v": 1, "a": {}}})


def test_device_and_area_poses_from_the_stream_place_their_panels() -> None:
    c = core()
    assert close(c.placed["by_lamp"].pose.position, (0.0, 0.5, 0.0))  # no pose yet: stage origin
    s = math.sqrt(0.5)
    c.apply_stream(
        [
            SNAP,
            StreamEvent(
                "poses",
                poses={
                    "device:dev1": pose(2.0, 1.0, -3.0),
                    "area:living_room": pose(-1.0, 0.0, -2.0, qy=s, qw=s),  # room turned 90 deg about +y
                    "device:other": None,
                },
            ),
        ]
    )
    assert close(c.placed["by_lamp"].pose.position, (2.0, 1.5, -3.0))
    room = c.placed["in_room"].pose
    # the room's +x is the stage's -z; the panel's own yaw adds to the room's
    assert close(room.position, (-1.0, 1.2, -3.0))
    assert close(room.orientation, Pose((0, 0, 0), (0.0, s, 0.0, s)).compose(Pose((0, 0, 0), yaw_quat(90))).orientation)
    assert close(c.placed["fixed"].pose.position, (0.0, 1.0, -1.0))

    # a later message carries only changes; null clears a pose
    c.apply_stream([StreamEvent("poses", poses={"device:dev1": pose(0.0, 0.0, -1.0)})])
    assert close(c.placed["by_lamp"].pose.position, (0.0, 0.5, -1.0))
    assert close(c.placed["in_room"].pose.position, (-1.0, 1.2, -3.0))
    c.apply_stream([StreamEvent("poses", poses={"device:dev1": None})])
    assert close(c.placed["by_lamp"].pose.position, (0.0, 0.5, 0.0))


def test_after_a_reconnect_the_first_poses_message_replaces_everything() -> None:
    c = core()
    c.apply_stream([SNAP, StreamEvent("poses", poses={"device:dev1": pose(2.0, 0.0, 0.0)})])
    # the hub restarted and no longer knows dev1's pose: the full set it sends lacks it
    c.apply_stream([SNAP, StreamEvent("poses", poses={"area:living_room": pose(0.0, 0.0, -5.0)})])
    assert "device:dev1" not in c.hub_poses
    assert close(c.placed["by_lamp"].pose.position, (0.0, 0.5, 0.0))


def test_placements_file_overrides_the_hub(tmp_path: Path) -> None:
    store = PlacementStore(tmp_path / "p.json", references={"device:dev1": Pose((5.0, 0.0, 0.0))})
    c = core(store)
    c.apply_stream([SNAP, StreamEvent("poses", poses={"device:dev1": pose(2.0, 1.0, -3.0)})])
    assert close(c.placed["by_lamp"].pose.position, (5.0, 0.5, 0.0))


def test_malformed_poses_are_ignored() -> None:
    c = core()
    c.apply_stream([SNAP, StreamEvent("poses", poses={"device:dev1": pose(1.0, 0.0, 0.0)})])
    for bad in (
        pose(float("nan"), 0.0, 0.0),
        pose(0.0, 0.0, 0.0, qw=0.0),
        {"x": "left"},
        {"y": 1.0},
        pose(1e300, 0.0, 0.0),
    ):
        c.apply_stream([StreamEvent("poses", poses={"device:dev1": bad, "area:living_room": pose(0.0, 0.0, -2.0)})])
        assert "device:dev1" not in c.hub_poses  # the bad entry is dropped, never used
        assert close(c.placed["in_room"].pose.position, (1.0, 1.2, -2.0))  # the good entry beside it applies
        assert all(math.isfinite(v) for v in c.placed["by_lamp"].pose.position)
    # an unnormalised quaternion is normalised before it reaches the runtime
    c.apply_stream([StreamEvent("poses", poses={"device:dev1": pose(0.0, 0.0, 0.0, qw=2.0)})])
    assert close(c.hub_poses["device:dev1"].orientation, (0.0, 0.0, 0.0, 1.0))


def test_stream_client_turns_poses_messages_into_events() -> None:
    got: list[StreamEvent] = []
    client = StreamClient("ws://unused", "t", got.append)
    client._dispatch(
        {"type": "poses", "id": 1, "devices": {"d1": pose(1, 2, 3), "d2": None}, "areas": {"kitchen": pose(0, 0, 0)}}
    )
    client._dispatch({"type": "poses", "id": 1, "devices": "garbage", "areas": {"a": 5}})
    assert got[0].kind == "poses"
    assert got[0].poses == {"device:d1": pose(1, 2, 3), "device:d2": None, "area:kitchen": pose(0, 0, 0)}
    assert got[1].poses == {"area:a": None}


async def test_subscription_asks_for_poses() -> None:
    """The subscribe message the client sends carries poses: true (checked against a tiny server)."""
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            m = msgpack.unpackb(msg.data)
            seen.append(m)
            if m["type"] == "auth":
                await ws.send_bytes(msgpack.packb({"type": "auth_ok"}))
            elif m["type"] == "subscribe":
                await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/api/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = StreamClient(f"ws://127.0.0.1:{port}/api/stream", "t", lambda e: None)
    async with aiohttp.ClientSession() as http:
        with contextlib.suppress(ConnectionError):
            await client._session(http)
    await runner.cleanup()
    assert any(m["type"] == "subscribe" and m.get("poses") is True for m in seen)
