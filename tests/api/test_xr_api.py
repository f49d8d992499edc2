"""The XR scene and pose API (hub/api/xr.py) against a real hub with virtual appliances and the scenes component
watching a real scene folder: resolution, ETags, pose writes (scopes, bad input, persistence) and live pushes on the
Home Assistant WebSocket and the msgpack stream when a pose or the scene file changes."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.scene_files import __file__ as scene_files_init
from qilu_hub.scenes.layout import layout_panel
from qilu_hub.scenes.loader import load_scene_file
from qilu_hub.scenes.manager import SceneManager
from qilu_hub.virtual import VirtualAppliances

from .conftest import LIGHT, Env, bearer
from .test_stream import connect, recv, send

EXAMPLE = Path(scene_files_init).parent / "examples" / "living_room.yaml"
SCENE = "living_room_vr"


async def start_xr_env(config_dir: Path) -> Env:
    scenes = config_dir / "scenes"
    scenes.mkdir(parents=True, exist_ok=True)
    if not (scenes / "living_room.yaml").exists():
        shutil.copy(EXAMPLE, scenes / "living_room.yaml")
    hub = Hub(config_dir, load_config(config_dir))
    hub.add_component(VirtualAppliances(animate=False))
    hub.add_component(SceneManager([scenes], watch_interval=0.05))
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=1000))
    hub.add_component(api)
    await hub.async_start()
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    _, read_only = hub.tokens.create("viewer", Scopes(read_only=True))
    _, kitchen = hub.tokens.create("kitchen headset", Scopes(areas=frozenset({"kitchen"})))
    return Env(hub, api, admin, read_only, kitchen)


@pytest.fixture
async def xenv(tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_xr_env(tmp_path)
    yield environment
    await environment.hub.async_stop()


def _device_of(env: Env, entity_id: str) -> str:
    entity = env.hub.entities.get(entity_id)
    assert entity is not None and entity.device_id is not None
    return entity.device_id


async def _get(session: aiohttp.ClientSession, url: str, token: str, status: int = 200) -> Any:
    async with session.get(url, headers=bearer(token)) as r:
        assert r.status == status, await r.text()
        return await r.json()


async def test_scene_resolved_for_a_client(xenv: Env, session: aiohttp.ClientSession) -> None:
    listing = await _get(session, f"{xenv.url}/api/xr/scenes", xenv.admin)
    assert [s["id"] for s in listing["scenes"]] == [SCENE]
    body = await _get(session, f"{xenv.url}/api/xr/scenes/{SCENE}", xenv.admin)
    scene = load_scene_file(EXAMPLE).immersive(SCENE)
    lights = body["panels"][0]
    # the layout is the OpenXR bridge's, control for control
    assert [c["rect"] for c in lights["controls"]] == [list(r) for r in layout_panel(scene.panels[0]).controls]
    toggle, _, slider, readout = lights["controls"]
    assert toggle["bindings"]["select"] == {"call": {"command": "toggle", "args": {}}}
    assert toggle["bindings"]["grab"] == {"bridge": "move_panel"}  # the scene's binding, inherited
    assert slider["bindings"]["select"] == {"call": {"command": "turn_on", "args": {"transition": 0.5}}}
    assert (slider["attribute"], slider["min"], slider["max"]) == ("brightness", 0, 255)
    assert readout["bindings"] == {}
    assert lights["placement"]["pose"]["y"] == pytest.approx(1.3)
    assert body["states"][LIGHT]["v"] == xenv.hub.states.get(LIGHT).value
    # the sofa panel sits in the living room, which has no pose yet: no home-frame pose to give
    assert body["panels"][1]["placement"]["reference"] is None and body["panels"][1]["placement"]["pose"] is None
    # ETag: the same scene is not sent twice
    async with session.get(f"{xenv.url}/api/xr/scenes/{SCENE}",
                           headers={**bearer(xenv.admin), "If-None-Match": f'"{body["version"]}"'}) as r:
        assert r.status == 304
    await _get(session, f"{xenv.url}/api/xr/scenes/nope", xenv.admin, 404)
    # a token scoped to the kitchen sees none of the living room's controls, so no scene at all: not listed, and
    # asked for by id it answers as a scene that does not exist (no probing which ids exist)
    assert (await _get(session, f"{xenv.url}/api/xr/scenes", xenv.kitchen))["scenes"] == []
    hidden = await _get(session, f"{xenv.url}/api/xr/scenes/{SCENE}", xenv.kitchen, 404)
    unknown = await _get(session, f"{xenv.url}/api/xr/scenes/nope", xenv.kitchen, 404)
    assert hidden == {**unknown, "message": unknown["message"].replace("nope", SCENE)}
    st = await connect(xenv, session, xenv.kitchen)
    await send(st, {"type": "xr/subscribe_scene", "id": 3, "scene_id": SCENE})
    refused = await recv(st)
    assert refused["success"] is False and refused["error"]["code"] == "not_found"
    await st.close()


async def test_pose_writes_scopes_bad_input_and_persistence(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_xr_env(tmp_path)
    try:
        dev = _device_of(env, LIGHT)
        url = f"{env.url}/api/xr/poses/devices/{dev}"
        pose = {"x": 1.0, "y": 1.2, "z": -2.0, "qx": 0, "qy": 0, "qz": 0, "qw": 2}
        async with session.put(url, json=pose, headers=bearer(env.admin)) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["pose"]["qw"] == 1.0  # normalised
        stored = env.hub.devices.get(dev)
        assert stored is not None and stored.pose is not None and stored.pose.x == 1.0
        for bad in ({"x": 1}, {"x": "1", "y": 0, "z": 0}, {"x": 1e9, "y": 0, "z": 0}, [1, 2, 3],
                    {"x": 0, "y": 0, "z": 0, "qx": 0, "qy": 0, "qz": 0, "qw": 0}, {"x": 0, "y": 0, "z": 0, "w": 1}):
            async with session.put(url, json=bad, headers=bearer(env.admin)) as r:
                assert r.status == 400, bad
        async with session.put(url, data=b"{not json", headers=bearer(env.admin)) as r:
            assert r.status == 400
        async with session.patch(url, json={"z": -3.0}, headers=bearer(env.admin)) as r:
            assert r.status == 200
        assert env.hub.devices.get(dev).pose.x == 1.0 and env.hub.devices.get(dev).pose.z == -3.0  # type: ignore
        async with session.put(url, json=pose, headers=bearer(env.read_only)) as r:
            assert r.status == 403
        async with session.put(url, json=pose, headers=bearer(env.kitchen)) as r:
            assert r.status == 404  # out of its scope: as if it did not exist
        async with session.put(f"{env.url}/api/xr/poses/areas/kitchen", json={"x": 4, "y": 0, "z": 1},
                               headers=bearer(env.kitchen)) as r:
            assert r.status == 200  # its own area it may place
        poses = await _get(session, f"{env.url}/api/xr/poses", env.admin)
        assert poses["devices"][dev]["z"] == -3.0 and poses["areas"]["kitchen"]["x"] == 4.0
    finally:
        await env.hub.async_stop()
    env = await start_xr_env(tmp_path)  # restart on the same directory: the registry kept both
    try:
        poses = await _get(session, f"{env.url}/api/xr/poses", env.admin)
        assert poses["devices"][dev]["z"] == -3.0 and poses["areas"]["kitchen"]["x"] == 4.0
        async with session.delete(f"{env.url}/api/xr/poses/areas/kitchen", headers=bearer(env.admin)) as r:
            assert r.status == 200
        assert env.hub.areas.get("kitchen").pose is None  # type: ignore[union-attr]
    finally:
        await env.hub.async_stop()


async def _ha(env: Env, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.url.replace("http", "ws", 1) + "/api/websocket")
    assert (await ws.receive_json())["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": env.admin})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def _ha_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    for _ in range(20):
        msg = await asyncio.wait_for(ws.receive_json(), 5)
        if msg.get("type") == "event":
            event: dict[str, Any] = msg["event"]
            return event
    raise AssertionError("no event")


async def test_live_scene_over_websocket_and_stream(xenv: Env, session: aiohttp.ClientSession,
                                                     tmp_path: Path) -> None:
    ha = await _ha(xenv, session)
    await ha.send_json({"id": 5, "type": "qilu/xr/subscribe_scene", "scene_id": SCENE})
    assert (await ha.receive_json())["success"] is True
    first = (await _ha_event(ha))["scene"]
    assert first["panels"][1]["placement"]["pose"] is None
    st = await connect(xenv, session)
    await send(st, {"type": "xr/subscribe_scene", "id": 9, "scene_id": SCENE})
    answer = await recv(st)
    assert answer["success"] is True and answer["result"]["scene"]["version"] == first["version"]

    # a pose written over REST moves the sofa panel for both clients
    async with session.put(f"{xenv.url}/api/xr/poses/areas/living_room", json={"x": 2.0, "y": 0.0, "z": -1.0},
                           headers=bearer(xenv.admin)) as r:
        assert r.status == 200
    moved = (await _ha_event(ha))["scene"]["panels"][1]["placement"]["pose"]
    assert moved["x"] == pytest.approx(2.0 + 0.8) and moved["z"] == pytest.approx(-1.0 - 0.6)
    pushed = await recv(st)
    assert pushed["type"] == "scene" and pushed["id"] == 9
    assert pushed["scene"]["panels"][1]["placement"]["pose"] == moved

    # the scene file edited: the new title arrives without a restart
    path = xenv.hub.config_dir / "scenes" / "living_room.yaml"
    path.write_text(path.read_text().replace("title: Living room", "title: Lounge"))
    assert (await _ha_event(ha))["scene"]["panels"][0]["title"] == "Lounge"
    assert (await recv(st))["scene"]["panels"][0]["title"] == "Lounge"
    # a broken edit keeps the last good scene (nothing is pushed, REST still serves it)
    path.write_text(path.read_text().replace("controls:", "kontrols:", 1))
    await asyncio.sleep(0.3)
    body = await _get(session, f"{xenv.url}/api/xr/scenes/{SCENE}", xenv.admin)
    assert body["panels"][0]["title"] == "Lounge"
    await send(st, {"type": "ping", "id": 10})
    assert (await recv(st))["type"] == "pong"  # no scene message was queued before it

    # unsubscribed, neither client hears of the next change
    await ha.send_json({"id": 6, "type": "unsubscribe_events", "subscription": 5})
    assert (await ha.receive_json())["success"] is True
    await send(st, {"type": "xr/unsubscribe_scene", "id": 11, "subscription": 9})
    assert (await recv(st))["success"] is True
    async with session.put(f"{xenv.url}/api/xr/poses/areas/living_room", json={"x": 3.0, "y": 0.0, "z": -1.0},
                           headers=bearer(xenv.admin)) as r:
        assert r.status == 200
    await ha.send_json({"id": 7, "type": "ping"})
    assert (await ha.receive_json()) == {"id": 7, "type": "pong"}
    await send(st, {"type": "ping", "id": 12})
    assert (await recv(st))["type"] == "pong"
    assert xenv.api.xr_push.subs == []  # nothing left listening
    await ha.close()
    await st.close()


async def test_pose_set_over_the_stream_reaches_pose_subscribers(xenv: Env, session: aiohttp.ClientSession) -> None:
    """The OpenXR bridge follows poses on the stream (``poses: true``): a pose written by a headset reaches it."""
    dev = _device_of(xenv, LIGHT)
    bridge = await connect(xenv, session)
    await send(bridge, {"type": "subscribe", "id": 1, "entities": [LIGHT], "poses": True})
    assert (await recv(bridge))["type"] == "snapshot"
    assert (await recv(bridge))["devices"][dev] is None
    headset = await connect(xenv, session)
    await send(headset, {"type": "xr/set_pose", "id": 2, "kind": "devices", "key": dev,
                         "pose": {"x": 0.5, "y": 1.0, "z": -1.5}})
    assert (await recv(headset))["success"] is True
    update = await recv(bridge)
    assert update["type"] == "poses" and update["devices"][dev]["x"] == 0.5
    await send(headset, {"type": "xr/set_pose", "id": 3, "kind": "devices", "key": dev, "pose": {"x": "a"}})
    assert (await recv(headset))["success"] is False
    assert json.dumps(xenv.hub.devices.get(dev).pose.to_dict())  # type: ignore[union-attr]


async def test_webxr_files_are_served_compressed_and_only_from_their_folder(xenv: Env,
                                                                            session: aiohttp.ClientSession) -> None:
    async with session.get(f"{xenv.url}/xr/qilu_xr/index.js",
                           headers={**bearer(xenv.admin), "Accept-Encoding": "gzip"}) as r:
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.content_type == "text/javascript" and "export" in await r.text()
    async with session.get(f"{xenv.url}/xr/", headers=bearer(xenv.admin)) as r:
        assert r.status == 200 and "Enter VR" in await r.text()
    for bad in ("/xr/nope.js", "/xr/%2E%2E/xr.py", "/xr/..%2Fxr.py", "/xr/qilu_xr/vendor/msgpack/LICENSE"):
        async with session.get(f"{xenv.url}{bad}", headers=bearer(xenv.admin)) as r:
            assert r.status == 404, bad
    async with session.get(f"{xenv.url}/xr/") as r:  # no token: the sign-in page, not the client
        assert r.status == 401 and "sign in" in (await r.text()).lower()
