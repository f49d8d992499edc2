"""Hostile input over all three protocols: JSON/msgpack nested past any sane depth, and text with no UTF-8 form.

Each is refused with a 400 or a protocol error and one short log line (never a traceback), the connection
keeps working, and no state content (a lone surrogate from a driver or an MQTT device) can silence a client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import msgpack
import pytest

from qilu_hub.api import input_checks
from qilu_hub.log_limit import LogLimiter

from .conftest import LIGHT, Env, bearer

BAD = "sensor.bad_text"
# Depths past our limit, past what a handler's stack tolerates, and past the JSON decoder's own limit.
DEPTHS = (40, 950, 5000)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log capture with a fresh per-peer log limit (it is per process; other tests used it from this address)."""
    monkeypatch.setattr(input_checks, "_LOG_LIMIT", LogLimiter())
    caplog.set_level(logging.INFO)
    return caplog


def assert_one_short_line(caplog: pytest.LogCaptureFixture, where: str) -> None:
    records = [r for r in caplog.records if r.name.startswith("qilu_hub")]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], "no tracebacks, no errors"
    refused = [r.getMessage() for r in records if "refused a message" in r.getMessage()]
    assert len(refused) == 1, refused  # rate limited: one line per peer and minute
    assert refused[0].startswith(where) and "\n" not in refused[0] and len(refused[0]) < 200, refused


async def auth_ha(session: aiohttp.ClientSession, env: Env) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": env.admin})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def auth_stream(session: aiohttp.ClientSession, env: Env) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(env.stream_url)
    await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": env.admin}))
    assert msgpack.unpackb((await ws.receive()).data)["type"] == "auth_ok"
    return ws


async def recv_ha(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    data: dict[str, Any] = json.loads(message.data)
    return data


async def recv_stream(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.BINARY, message
    data: dict[str, Any] = msgpack.unpackb(message.data)
    return data


async def test_deeply_nested_rest_bodies_are_400_with_one_log_line(
        env: Env, session: aiohttp.ClientSession, refusals: pytest.LogCaptureFixture) -> None:
    for depth in DEPTHS:
        body = f'{{"entity_id": "{LIGHT}", "brightness": {nested(depth)}}}'
        async with session.post(env.url + "/api/services/light/turn_on", data=body, headers=bearer(env.admin)) as resp:
            assert resp.status == 400, (depth, await resp.text())
            assert "nested deeper than" in (await resp.json())["message"]
    # The label routes parse their own bodies: the same answer (before any check of whether labels are enabled).
    async with session.post(env.url + "/api/recognition/labels", data='{"scene": ' + nested(5000) + "}",
                            headers=bearer(env.admin)) as resp:
        assert resp.status == 400 and "nested deeper than" in (await resp.json())["message"]
    assert_one_short_line(refusals, "REST")
    async with session.post(env.url + "/api/services/light/turn_on", json={"entity_id": LIGHT},
                            headers=bearer(env.admin)) as resp:
        assert resp.status == 200
    assert env.hub.states.get(LIGHT).value == "on"


async def test_lone_surrogate_in_a_rest_body_is_a_400(env: Env, session: aiohttp.ClientSession,
                                                      refusals: pytest.LogCaptureFixture) -> None:
    for body in (b'{"entity_id": "light.x\\ud800"}',  # a JSON escape: decodes to a str no encoder takes
                 b'{"entity_id": "light.x\xed\xa0\x80"}',  # the surrogate's bytes: not UTF-8
                 b'{"entity_id": "light.x\\udfff\\ud800"}'):  # halves in the wrong order
        async with session.post(env.url + "/api/services/light/turn_on", data=body, headers=bearer(env.admin)) as resp:
            assert resp.status == 400, (body, await resp.text())
            assert "Data should be valid JSON" in (await resp.json())["message"]
    # A proper pair (an emoji written as two escapes) is valid JSON and gets the ordinary answer.
    async with session.post(env.url + "/api/services/light/turn_on", data=b'{"entity_id": "light.\\ud83d\\ude00"}',
                            headers=bearer(env.admin)) as resp:
        assert resp.status == 404 and "light.\U0001f600" in (await resp.json())["message"]
    assert_one_short_line(refusals, "REST")


async def test_ha_websocket_refuses_nested_json_and_keeps_its_subscription(
        env: Env, session: aiohttp.ClientSession, refusals: pytest.LogCaptureFixture) -> None:
    ws = await auth_ha(session, env)
    await ws.send_json({"id": 1, "type": "subscribe_entities", "entity_ids": [LIGHT]})
    assert (await recv_ha(ws))["success"] is True
    assert "a" in (await recv_ha(ws))["event"]  # the initial states
    for i, depth in enumerate(DEPTHS, start=2):
        await ws.send_str(f'{{"id": {i}, "type": "call_service", "domain": "light", "service": "turn_on", '
                          f'"service_data": {{"entity_id": "{LIGHT}", "brightness": {nested(depth)}}}}}')
        error = await recv_ha(ws)
        assert error["success"] is False and error["error"]["code"] == "invalid_format", error
        assert "nested deeper than" in error["error"]["message"]
    await ws.send_str('{"id": 9, "type": "ping", "x": "\\ud800"}')
    error = await recv_ha(ws)
    assert error["error"]["code"] == "invalid_format" and "surrogate" in error["error"]["message"]
    env.hub.states.async_set(LIGHT, "on", {"brightness": 255})
    change = await recv_ha(ws)
    assert change["id"] == 1 and change["event"]["c"][LIGHT]["+"]["s"] == "on"
    await ws.send_json({"id": 10, "type": "ping"})
    assert await recv_ha(ws) == {"id": 10, "type": "pong"}
    assert_one_short_line(refusals, "Home Assistant WebSocket")
    await ws.close()


async def test_stream_refuses_nested_msgpack_and_keeps_working(
        env: Env, session: aiohttp.ClientSession, refusals: pytest.LogCaptureFixture) -> None:
    ws = await auth_stream(session, env)
    await ws.send_bytes(msgpack.packb({"type": "subscribe", "id": "s", "entities": [LIGHT]}))
    assert (await recv_stream(ws))["type"] == "snapshot"
    deep: list[Any] = []
    for _ in range(1000):  # within msgpack's own limit (1024): it decodes, and used to reach the command
        deep = [deep]
    await ws.send_bytes(msgpack.packb({"type": "call", "id": 1, "entity_id": LIGHT, "command": "turn_on",
                                       "args": {"brightness": deep}}))
    error = await recv_stream(ws)
    assert error["id"] is None and error["error"]["code"] == "invalid_format", error
    assert "nested deeper than" in error["error"]["message"]
    await ws.send_bytes(b"\x91" * 5000 + b"\x90")  # past msgpack's limit
    assert "nested deeper than" in (await recv_stream(ws))["error"]["message"]
    await ws.send_bytes(msgpack.packb({"type": "call", "id": 2, "entity_id": LIGHT, "command": "turn_on"}))
    answers = [await recv_stream(ws), await recv_stream(ws)]
    assert {"type": "result", "id": 2, "success": True} in answers
    assert any(a["type"] == "delta" and a["states"][LIGHT]["v"] == "on" for a in answers), answers
    assert_one_short_line(refusals, "stream")
    await ws.close()


async def test_a_state_with_a_lone_surrogate_silences_no_client(env: Env, session: aiohttp.ClientSession) -> None:
    """A driver or an MQTT device can put any str in a state; no client may lose its feed over it."""
    ha = await auth_ha(session, env)
    await ha.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    assert (await recv_ha(ha))["success"] is True
    stream = await auth_stream(session, env)
    await stream.send_bytes(msgpack.packb({"type": "subscribe", "id": "s", "entities": [BAD, LIGHT]}))
    assert (await recv_stream(stream))["type"] == "snapshot"

    env.hub.states.async_set(BAD, "odd\ud800", {"friendly_name": "bad \udfff text"})
    bad_event = await recv_ha(ha)
    new_state = bad_event["event"]["data"]["new_state"]
    assert new_state["state"] == "odd?" and new_state["attributes"]["friendly_name"] == "bad ? text"
    bad_delta = await recv_stream(stream)
    assert bad_delta["states"][BAD]["v"] == "odd?"

    env.hub.states.async_set(LIGHT, "on", {"brightness": 200})
    event = await recv_ha(ha)
    assert event["event"]["data"]["new_state"]["entity_id"] == LIGHT
    delta = await recv_stream(stream)
    assert delta["states"][LIGHT]["a"]["brightness"] == 200

    await ha.send_json({"id": 2, "type": "get_states"})
    states = await recv_ha(ha)
    assert states["success"] is True and BAD in {s["entity_id"] for s in states["result"]}
    for path in ("/api/states", f"/api/states/{BAD}"):
        async with session.get(env.url + path, headers=bearer(env.admin)) as resp:
            assert resp.status == 200 and "odd?" in await resp.text()
    await asyncio.gather(ha.close(), stream.close())



async def test_recursion_escaping_any_rest_handler_is_a_400(env: Env, session: aiohttp.ClientSession,
                                                           refusals: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net for paths nobody found yet: a handler that still hits RecursionError (injected here into
    the service call) answers 400 with one log line, not a 500 with a traceback, and the hub carries on."""
    from qilu_hub.api import rest

    async def recurses(*args: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rest, "call_service", recurses)
    for _ in range(3):
        async with session.post(env.url + "/api/services/light/turn_on", json={"entity_id": LIGHT},
                                headers=bearer(env.admin)) as resp:
            assert resp.status == 400 and "nested too deeply" in (await resp.json())["message"]
    assert_one_short_line(refusals, "HTTP")
    async with session.get(env.url + "/api/states", headers=bearer(env.admin)) as resp:
        assert resp.status == 200


async def test_a_state_with_a_lone_surrogate_loses_no_history(env: Env, session: aiohttp.ClientSession) -> None:
    """SQLite cannot store such text either: the recorder used to lose the whole interval (every entity's rows)
    and raise out of its flush; now it stores the interval with "?" in place of the surrogate."""
    env.hub.states.async_set(LIGHT, "on", {"brightness": 10})
    env.hub.states.async_set(BAD, "odd\ud800", {"friendly_name": "bad \udfff text", "list": ["\ud800"]})
    env.hub.states.async_set(LIGHT, "off", {"brightness": 0})
    async with session.get(env.url + "/api/history/period", params={"filter_entity_id": f"{BAD},{LIGHT}"},
                           headers=bearer(env.admin)) as resp:
        assert resp.status == 200, await resp.text()
        history = {rows[0]["entity_id"]: rows for rows in await resp.json()}
    assert [r["state"] for r in history[LIGHT]][-2:] == ["on", "off"]
    (bad,) = history[BAD]
    assert bad["state"] == "odd?" and bad["attributes"] == {"friendly_name": "bad ? text", "list": ["?"]}
    assert env.hub.recorder is not None and env.hub.recorder.rows_dropped == 0
