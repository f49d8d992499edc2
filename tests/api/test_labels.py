"""Household labels over REST, the Home Assistant WebSocket and the msgpack stream, on a real hub."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import msgpack
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.recognition.labels import LabelStore, stored_labels
from qilu_hub.virtual import VirtualAppliances

from .conftest import Env, bearer, start_env

URL = "/api/recognition/labels"


@pytest.fixture
async def lenv(tmp_path: Path) -> AsyncIterator[Env]:
    config = load_config(tmp_path)
    hub = Hub(tmp_path, config, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    hub.add_component(LabelStore())
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=1000))
    hub.add_component(api)
    await hub.async_start()
    _, admin = hub.tokens.create("alice", Scopes())  # a household member's ordinary token, not admin
    _, read_only = hub.tokens.create("viewer", Scopes(read_only=True))
    _, kitchen = hub.tokens.create("kitchen headset", Scopes(areas=frozenset({"kitchen"})))
    yield Env(hub, api, admin, read_only, kitchen)
    await hub.async_stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _doc(env: Env, session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get(env.url + "/api/openapi.json", headers=bearer(env.admin)) as resp:
        doc: dict[str, Any] = await resp.json()
    return doc


def _check(doc: dict[str, Any], name: str, value: Any) -> None:
    jsonschema.validate(value, {**doc["components"]["schemas"][name], "components": doc["components"]})


async def test_rest_add_list_stop_delete(lenv: Env, session: aiohttp.ClientSession) -> None:
    doc = await _doc(lenv, session)
    auth = bearer(lenv.admin)
    now = time.time()
    async with session.post(lenv.url + URL, headers=auth,
                            json={"scene": "cooking", "start": now - 3600, "end": now - 1800, "note": "soup"}) as r:
        assert r.status == 201
        closed = await r.json()
    _check(doc, "Label", closed)
    assert (closed["scene"], closed["note"], closed["created_by"]) == ("cooking", "soup", "alice")
    async with session.post(lenv.url + URL, headers=auth, json={"scene": "eating"}) as r:
        assert r.status == 201
        opened = await r.json()
    assert opened["end"] is None and abs(opened["start"] - time.time()) < 5
    async with session.get(lenv.url + URL, headers=auth) as r:
        listing = await r.json()
    assert [lb["id"] for lb in listing["labels"]] == [opened["id"], closed["id"]]  # newest first
    assert listing["open"]["id"] == opened["id"]
    assert "guests" in listing["scenes"] and "waking_up" in listing["scenes"] and listing["can_edit"]
    list_schema = doc["paths"][URL]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(listing, {**list_schema, "components": doc["components"]})
    async with session.get(lenv.url + URL + "?limit=1", headers=auth) as r:
        assert [lb["id"] for lb in (await r.json())["labels"]] == [opened["id"]]
    async with session.post(lenv.url + URL + "/stop", headers=auth) as r:
        assert r.status == 200
        stopped = await r.json()
    assert stopped["id"] == opened["id"] and stopped["end"] is not None
    async with session.post(lenv.url + URL + "/stop", headers=auth) as r:
        assert r.status == 404
        _check(doc, "LabelError", await r.json())
    async with session.delete(lenv.url + URL + "/" + closed["id"], headers=auth) as r:
        assert r.status == 200
    async with session.delete(lenv.url + URL + "/" + closed["id"], headers=auth) as r:
        assert r.status == 404
    # What the API acknowledged is what is in the database.
    assert [lb.to_dict() for lb in stored_labels(lenv.hub.storage)] == [stopped]


@pytest.mark.parametrize(("body", "field"), [
    ({"scene": "partying"}, "scene"),
    ({}, "scene"),
    ({"scene": "cooking", "start": "yesterday"}, "start"),
    ({"scene": "cooking", "start": 1e12}, "start"),
    ({"scene": "cooking", "start": 1_000, "end": 500}, "start"),
    ({"scene": "cooking", "end": 1}, "end"),
    ({"scene": "cooking", "note": ["x"]}, "note"),
    ({"scene": "cooking", "colour": "red"}, "colour"),
])
async def test_rest_bad_input_is_400_naming_the_field(
    lenv: Env, session: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    async with session.post(lenv.url + URL, headers=bearer(lenv.admin), json=body) as r:
        assert r.status == 400
        error = await r.json()
    assert error["code"] == "invalid_format" and error["field"] == field, error
    _check(await _doc(lenv, session), "LabelError", error)
    assert stored_labels(lenv.hub.storage) == []


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"cooking"'])
async def test_rest_body_not_an_object(lenv: Env, session: aiohttp.ClientSession, raw: bytes) -> None:
    headers = {**bearer(lenv.admin), "Content-Type": "application/json"}
    async with session.post(lenv.url + URL, headers=headers, data=raw) as r:
        assert r.status == 400
        assert (await r.json())["code"] == "invalid_format"


async def test_rest_overlap_is_409_with_the_conflicting_id(lenv: Env, session: aiohttp.ClientSession) -> None:
    now = time.time()
    auth = bearer(lenv.admin)
    async with session.post(lenv.url + URL, headers=auth, json={"scene": "sleeping", "start": now - 9000,
                                                                "end": now - 3600}) as r:
        first = await r.json()
    async with session.post(lenv.url + URL, headers=auth, json={"scene": "bathing", "start": now - 4000,
                                                                "end": now - 3000}) as r:
        assert r.status == 409
        error = await r.json()
    assert error["code"] == "conflict" and error["conflicts"] == [first["id"]]


async def test_rest_patch_corrects_a_label_and_refuses_what_add_would(
    lenv: Env, session: aiohttp.ClientSession
) -> None:
    doc = await _doc(lenv, session)
    now = time.time()
    auth = bearer(lenv.admin)

    async def add(body: dict[str, Any]) -> dict[str, Any]:
        async with session.post(lenv.url + URL, headers=auth, json=body) as r:
            assert r.status == 201
            label: dict[str, Any] = await r.json()
            return label

    async def patch(label_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        async with session.patch(lenv.url + URL + "/" + label_id, headers=auth, json=body) as r:
            return r.status, await r.json()

    cooking = await add({"scene": "cooking", "start": now - 7200, "end": now - 5400})
    eating = await add({"scene": "eating", "start": now - 5400, "end": now - 3600})
    # The household says it was baking bread, later than recorded: scene, note and times change, id stays.
    status, fixed = await patch(cooking["id"], {"scene": "cooking", "start": now - 6600, "note": "bread"})
    assert status == 200, fixed
    _check(doc, "Label", fixed)
    assert (fixed["id"], fixed["start"], fixed["end"]) == (cooking["id"], now - 6600, now - 5400)
    assert fixed["note"] == "bread"
    # Its own old interval is no conflict; another label is.
    status, error = await patch(cooking["id"], {"end": now - 5000})
    assert (status, error["code"], error["conflicts"]) == (409, "conflict", [eating["id"]])
    for body, field in (({"scene": "juggling"}, "scene"), ({"end": now - 9000}, "end"),
                        ({"colour": "red"}, "colour"), ({"label_id": "x"}, "label_id")):
        status, error = await patch(cooking["id"], body)
        assert (status, error["code"], error.get("field")) == (400, "invalid_format", field), body
        _check(doc, "LabelError", error)
    status, error = await patch(cooking["id"], {})
    assert (status, error["code"]) == (400, "invalid_format") and "nothing to change" in error["message"]
    assert (await patch("nope", {"note": "x"}))[0] == 404
    # Reopening a finished label that others follow would overlap them.
    status, error = await patch(cooking["id"], {"end": None})
    assert (status, error["conflicts"]) == (409, [eating["id"]])
    status, reopened = await patch(eating["id"], {"end": None})
    assert status == 200 and reopened["end"] is None
    # Refusals changed nothing; what was acknowledged is in the database.
    stored = {lb.id: lb.to_dict() for lb in stored_labels(lenv.hub.storage)}
    assert stored == {cooking["id"]: fixed, eating["id"]: reopened}


async def test_scopes(lenv: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(lenv.url + URL, headers=bearer(lenv.read_only)) as r:
        assert r.status == 200
    for method, path in (("post", URL), ("post", URL + "/stop"), ("patch", URL + "/x"), ("delete", URL + "/x")):
        async with session.request(method, lenv.url + path, headers=bearer(lenv.read_only),
                                   json={"scene": "cooking"}) as r:
            assert r.status == 403, (method, path)
            assert "read-only" in (await r.json())["message"]
    # An area-limited token (a guest's headset) does not learn when the household sleeps.
    async with session.get(lenv.url + URL, headers=bearer(lenv.kitchen)) as r:
        assert r.status == 403
    async with session.get(lenv.url + URL) as r:
        assert r.status == 401
    assert stored_labels(lenv.hub.storage) == []


async def test_websocket_commands(lenv: Env, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(lenv.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": lenv.admin})
    assert (await ws.receive_json())["type"] == "auth_ok"

    async def call(msg_id: int, kind: str, **fields: Any) -> dict[str, Any]:
        await ws.send_json({"id": msg_id, "type": "qilu/recognition/labels/" + kind, **fields})
        answer: dict[str, Any] = await ws.receive_json()
        assert answer["id"] == msg_id and answer["type"] == "result"
        return answer

    added = await call(1, "add", scene="relaxing", note="film")
    assert added["success"] and added["result"]["end"] is None and added["result"]["created_by"] == "alice"
    bad = await call(2, "add", scene="relaxing", start="noon")
    assert not bad["success"] and bad["error"]["code"] == "invalid_format" and bad["error"]["field"] == "start"
    listed = await call(3, "list")
    assert listed["result"]["open"]["id"] == added["result"]["id"]
    corrected = await call(4, "update", label_id=added["result"]["id"], scene="eating", note="dinner")
    assert corrected["success"] and (corrected["result"]["scene"], corrected["result"]["note"]) == ("eating", "dinner")
    assert corrected["result"]["id"] == added["result"]["id"]
    assert (await call(5, "stop"))["result"]["end"] is not None
    assert (await call(6, "delete", label_id=added["result"]["id"]))["success"]
    missing = await call(7, "delete", label_id=added["result"]["id"])
    assert missing["error"]["code"] == "not_found"
    assert (await call(8, "list"))["result"]["labels"] == []
    await ws.close()


async def test_websocket_read_only_token_cannot_write(lenv: Env, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(lenv.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": lenv.read_only})
    await ws.receive_json()
    await ws.send_json({"id": 1, "type": "qilu/recognition/labels/add", "scene": "cooking"})
    answer = await ws.receive_json()
    assert not answer["success"] and answer["error"]["code"] == "unauthorized"
    await ws.close()
    assert stored_labels(lenv.hub.storage) == []


async def test_stream_commands(lenv: Env, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(lenv.stream_url)
    await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": lenv.admin}))
    assert msgpack.unpackb(await ws.receive_bytes())["type"] == "auth_ok"

    async def call(msg_id: int, kind: str, **fields: Any) -> dict[str, Any]:
        await ws.send_bytes(msgpack.packb({"id": msg_id, "type": "labels/" + kind, **fields}))
        answer: dict[str, Any] = msgpack.unpackb(await ws.receive_bytes())
        assert answer["id"] == msg_id and answer["type"] == "result"
        return answer

    added = await call(1, "add", scene="guests")
    assert added["success"] and added["result"]["scene"] == "guests"
    bad = await call(2, "add", scene="eating", start=time.time() - 3600)  # would start before the open one
    assert not bad["success"] and bad["error"]["code"] == "conflict"
    assert (await call(3, "list"))["result"]["open"]["scene"] == "guests"
    moved = await call(5, "update", label_id=added["result"]["id"], start=time.time() - 7200)
    assert moved["success"] and moved["result"]["start"] < time.time() - 7000
    assert (await call(4, "stop"))["success"]
    await ws.close()


async def test_without_a_label_store_the_endpoints_say_so(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path)
    try:
        async with session.get(env.url + URL, headers=bearer(env.admin)) as r:
            assert r.status == 404
            assert "not enabled" in (await r.json())["message"]
    finally:
        await env.hub.async_stop()


async def test_the_label_command_line_against_a_running_hub(lenv: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """`qilu-hub label` (hub/cli/label.py) does through REST what the dashboard's panel does."""
    import asyncio

    from qilu_hub.cli import main

    def cli(*argv: str, token: str | None = None) -> int:
        return main(["label", "--hub", lenv.url, "--token", token or lenv.admin, *argv])

    assert await asyncio.to_thread(cli, "start", "cooking", "--note", "soup") == 0
    assert "labelling from now:" in capsys.readouterr().out
    assert lenv.hub.components["recognition_labels"].open_label().scene == "cooking"  # type: ignore[attr-defined]
    assert await asyncio.to_thread(cli, "stop") == 0
    assert lenv.hub.components["recognition_labels"].open_label() is None  # type: ignore[attr-defined]
    night = dt.datetime.now().replace(hour=6, minute=30, second=0, microsecond=0) - dt.timedelta(days=1)
    bedtime = night - dt.timedelta(hours=7, minutes=30)
    assert await asyncio.to_thread(cli, "add", "sleeping", bedtime.isoformat(), night.isoformat()) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(cli, "list") == 0
    listed = capsys.readouterr().out
    assert "sleeping" in listed and "cooking" in listed and "(soup)" in listed
    # Refusals carry the hub's reason and field; a read-only token may not write; an unreachable hub says so.
    assert await asyncio.to_thread(cli, "start", "juggling") == 1
    assert "field scene" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "start", "cooking", token=lenv.read_only) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["label", "--hub", "http://127.0.0.1:9", "--token", "x", "list"]) == 3
    assert "cannot reach the hub" in capsys.readouterr().err
    (sleeping,) = [lb for lb in stored_labels(lenv.hub.storage) if lb.scene == "sleeping"]
    later = (night + dt.timedelta(minutes=30)).isoformat()
    assert await asyncio.to_thread(cli, "edit", sleeping.id, "--end", later, "--note", "weekend") == 0
    assert "corrected:" in capsys.readouterr().out
    (edited,) = [lb for lb in stored_labels(lenv.hub.storage) if lb.id == sleeping.id]
    assert (edited.end, edited.note) == (night.timestamp() + 1800, "weekend")
    assert await asyncio.to_thread(cli, "edit", sleeping.id) == 2
    assert "nothing to change" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "edit", sleeping.id, "--scene", "juggling") == 1
    assert "field scene" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "delete", sleeping.id) == 0
    assert all(lb.scene != "sleeping" for lb in stored_labels(lenv.hub.storage))
