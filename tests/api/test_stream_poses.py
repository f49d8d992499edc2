"""Device poses and area frames on the msgpack stream (hub/api/stream_poses.py), against a real hub."""

from __future__ import annotations

from typing import Any

import aiohttp

from qilu_hub.model import Pose

from .conftest import LIGHT, Env
from .test_stream import connect, recv, send


def _device_of(env: Env, entity_id: str) -> str:
    entity = env.hub.entities.get(entity_id)
    assert entity is not None and entity.device_id is not None
    return entity.device_id


async def _subscribe_poses(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "id": 1, "entities": [LIGHT], "poses": True})
    assert (await recv(ws))["type"] == "snapshot"
    poses = await recv(ws)
    assert poses["type"] == "poses" and poses["id"] == 1
    return poses


async def test_poses_follow_the_snapshot_then_only_changes(env: Env, session: aiohttp.ClientSession) -> None:
    light_dev = _device_of(env, LIGHT)
    env.hub.devices.async_update(light_dev, pose=Pose(1.0, 1.5, -2.0, 0.0, 0.7071, 0.0, 0.7071))
    ws = await connect(env, session)
    poses = await _subscribe_poses(ws)
    # every device and area the token sees, with or without a pose
    assert set(poses["devices"]) == {d.id for d in env.hub.devices.all()}
    assert set(poses["areas"]) == {a.id for a in env.hub.areas.all()} >= {"living_room", "kitchen"}
    assert poses["devices"][light_dev] == {
        "x": 1.0, "y": 1.5, "z": -2.0, "qx": 0.0, "qy": 0.7071, "qz": 0.0, "qw": 0.7071, "frame": "home"}
    assert poses["areas"]["living_room"] is None

    env.hub.areas.async_update("living_room", pose=Pose(3.0, 0.0, -1.0))
    change = await recv(ws)
    assert change == {"type": "poses", "id": 1, "devices": {},
                      "areas": {"living_room": Pose(3.0, 0.0, -1.0).to_dict()}}

    # a registry update that leaves the pose alone sends nothing
    env.hub.devices.async_update(light_dev, name_by_user="Ceiling")
    await send(ws, {"type": "ping", "id": 9})
    assert await recv(ws) == {"type": "pong", "id": 9}

    env.hub.devices.async_update(light_dev, pose=Pose(0.0, 2.0, 0.0))
    assert (await recv(ws))["devices"] == {light_dev: Pose(0.0, 2.0, 0.0).to_dict()}
    env.hub.devices.async_update(light_dev, pose=None)  # pose cleared
    assert (await recv(ws))["devices"] == {light_dev: None}
    env.hub.devices.async_remove(light_dev)
    msg = await recv(ws)
    if msg["type"] == "delta":  # should removing the device also remove its entity's state
        msg = await recv(ws)
    assert msg == {"type": "poses", "id": 1, "devices": {light_dev: None}, "areas": {}}
    await ws.close()


async def test_pose_changes_coalesce_for_a_slow_reader(env: Env, session: aiohttp.ClientSession) -> None:
    light_dev = _device_of(env, LIGHT)
    ws = await connect(env, session)
    await _subscribe_poses(ws)
    for i in range(500):  # no await between: nothing is written meanwhile
        env.hub.devices.async_update(light_dev, pose=Pose(float(i), 0.0, 0.0))
    conn = env.api.stream_fanout.connections[0]
    assert len(conn.subs[1].pending_poses) == 1
    assert (await recv(ws))["devices"] == {light_dev: Pose(499.0, 0.0, 0.0).to_dict()}
    await ws.close()


async def test_scoped_token_sees_only_its_devices_and_areas(env: Env, session: aiohttp.ClientSession) -> None:
    env.hub.devices.async_update(_device_of(env, LIGHT), pose=Pose(1.0, 1.0, 1.0))
    ws = await connect(env, session, env.kitchen)
    await send(ws, {"type": "subscribe", "id": 1, "poses": True})
    await recv(ws)
    poses = await recv(ws)
    kitchen_devices = {e.device_id for e in env.hub.entities.all() if env.hub.entities.area_of(e) == "kitchen"}
    assert set(poses["devices"]) == kitchen_devices and kitchen_devices
    assert set(poses["areas"]) == {"kitchen"}
    env.hub.devices.async_update(_device_of(env, LIGHT), pose=Pose(2.0, 2.0, 2.0))  # not visible: nothing
    env.hub.areas.async_update("living_room", pose=Pose(2.0, 0.0, 0.0))
    await send(ws, {"type": "ping", "id": 3})
    assert await recv(ws) == {"type": "pong", "id": 3}
    await ws.close()


async def test_without_poses_nothing_changes_for_old_clients(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session)
    await send(ws, {"type": "subscribe", "id": 1, "entities": [LIGHT]})
    assert (await recv(ws))["type"] == "snapshot"
    env.hub.devices.async_update(_device_of(env, LIGHT), pose=Pose(1.0, 1.0, 1.0))
    await send(ws, {"type": "ping", "id": 2})
    assert await recv(ws) == {"type": "pong", "id": 2}
    await send(ws, {"type": "subscribe", "id": 3, "poses": "yes"})
    reply = await recv(ws)
    assert reply["success"] is False and reply["error"]["code"] == "invalid_format"
    await ws.close()


async def test_a_device_moving_area_updates_what_a_scoped_token_sees(env: Env, session: aiohttp.ClientSession) -> None:
    light_dev = _device_of(env, LIGHT)  # in the living room, which the kitchen token does not see
    env.hub.devices.async_update(light_dev, pose=Pose(1.0, 1.0, 1.0))
    env.hub.areas.async_update("living_room", pose=Pose(5.0, 0.0, 0.0))
    ws = await connect(env, session, env.kitchen)
    await send(ws, {"type": "subscribe", "id": 1, "poses": True})
    await recv(ws)
    first = await recv(ws)
    assert light_dev not in first["devices"] and "living_room" not in first["areas"]
    env.hub.devices.async_update(light_dev, area_id="kitchen")  # moved into the token's area: now visible
    msg = await recv(ws)
    while msg["type"] != "poses":  # the light's state may come first now that the token sees it
        msg = await recv(ws)
    assert msg["devices"] == {light_dev: Pose(1.0, 1.0, 1.0).to_dict()}
    env.hub.devices.async_update(light_dev, area_id="living_room")  # and back out: said once
    msg = await recv(ws)
    while msg["type"] != "poses":
        msg = await recv(ws)
    assert msg["devices"] == {light_dev: None}
    await ws.close()


async def test_an_entity_token_sees_the_area_its_device_moves_to(env: Env, session: aiohttp.ClientSession) -> None:
    from qilu_hub.tokens import Scopes

    _, lamp_only = env.hub.tokens.create("lamp panel", Scopes(entities=frozenset({LIGHT})))
    env.hub.areas.async_update("kitchen", pose=Pose(0.0, 0.0, 4.0))
    ws = await connect(env, session, lamp_only)
    await send(ws, {"type": "subscribe", "id": 1, "poses": True})
    await recv(ws)
    assert set((await recv(ws))["areas"]) == {"living_room"}  # where its one entity is
    env.hub.devices.async_update(_device_of(env, LIGHT), area_id="kitchen")
    msg = await recv(ws)
    while msg["type"] != "poses":
        msg = await recv(ws)
    assert msg["areas"] == {"kitchen": Pose(0.0, 0.0, 4.0).to_dict(), "living_room": None}
    await ws.close()


async def test_a_device_merged_away_is_removed_from_the_stream(env: Env, session: aiohttp.ClientSession) -> None:
    a = env.hub.devices.async_get_or_create(source="mdns", name="Washer", identifiers=[("qoap", "WM-9")])
    b = env.hub.devices.async_get_or_create(source="ble", name="Washer BLE",
                                            connections=[("ble", "11:22:33:44:55:99")])
    env.hub.devices.async_update(b.id, pose=Pose(2.0, 0.0, 0.0))
    ws = await connect(env, session)
    poses = await _subscribe_poses(ws)
    assert poses["devices"][b.id] == Pose(2.0, 0.0, 0.0).to_dict()
    env.hub.devices.async_get_or_create(source="mdns", name="Washer", identifiers=[("qoap", "WM-9")],
                                        connections=[("ble", "11:22:33:44:55:99")])  # one appliance after all
    msg = await recv(ws)
    assert msg["type"] == "poses" and msg["devices"][b.id] is None
    assert msg["devices"].get(a.id, Pose(2.0, 0.0, 0.0).to_dict()) == Pose(2.0, 0.0, 0.0).to_dict()  # kept pose
    await ws.close()
