"""The application as a whole: every route needs a token, Origin checks, login limiting, TLS."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from qilu_hub import ConfigError, Hub
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.api.app import IN_BAND_AUTH_PATHS, PUBLIC_PATHS
from qilu_hub.api.dashboard import LOGIN_PATH
from qilu_hub.api.login_links import LINK_PREFIX
from qilu_hub.config import load_config

from .conftest import Env, bearer, start_env


def _concrete(path: str) -> str:
    return (path.replace("{entity_id}", "light.living_room_ceiling_light").replace("{domain}", "light")
            .replace("{service}", "turn_on").replace("{start}", "2024-01-01T00:00:00")
            .replace("{key}", "k").replace("{action:adopt|ignore}", "adopt").replace("{filename:.*}", "app.js")
            .replace("{ticket}", "qt_x"))


async def test_every_route_but_health_requires_a_token(env: Env, session: aiohttp.ClientSession) -> None:
    app: web.Application = env.api._runner.app  # type: ignore[union-attr]
    routes = [(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None]
    assert len(routes) >= 15
    checked = 0
    for method, canonical in routes:
        if method == "HEAD":
            continue
        path = _concrete(canonical)
        if canonical in PUBLIC_PATHS:
            async with session.get(env.url + path) as resp:  # the CA download: no CA without hub.tls: auto
                assert resp.status == (404 if canonical == "/api/tls/ca.crt" else 200)
            continue
        if canonical == LOGIN_PATH:  # the sign-in form takes the token in its body (test_browser_hardening.py)
            async with session.post(env.url + path, headers={"Origin": env.url}) as resp:
                assert resp.status == 401
            checked += 1
            continue
        if canonical.startswith(LINK_PREFIX):  # a sign-in link's page: a button, no token (test_login_links.py)
            async with session.get(env.url + path) as resp:
                assert resp.status == 200 and "<script" not in await resp.text()
            checked += 1
            continue
        if canonical in IN_BAND_AUTH_PATHS:
            ws = await session.ws_connect(env.url + path)
            if canonical == "/api/websocket":
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": "qh_bad"})
                assert (await ws.receive_json())["type"] == "auth_invalid"
            else:
                await ws.send_bytes(b"\x81\xa4type\xa4ping")  # not an auth message
                assert b"auth_invalid" in (await ws.receive()).data
            assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
            checked += 1
            continue
        for headers in ({}, bearer("qh_invalid"), {"Cookie": "qilu_token=qh_invalid"}):
            async with session.request(method, env.url + path, headers=headers) as resp:
                assert resp.status == 401, (method, path, headers, resp.status)
        async with session.request(method, env.url + path, headers=bearer(env.admin)) as resp:
            assert resp.status != 401, (method, path)
        checked += 1
    assert checked == len([r for r in routes if r[0] != "HEAD" and r[1] not in PUBLIC_PATHS])


async def test_origin_checks(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/api/states", headers={**bearer(env.admin), "Origin": "http://evil.example"}
                           ) as resp:
        assert resp.status == 403
    same = env.url  # a page served by the hub itself
    async with session.get(env.url + "/api/states", headers={**bearer(env.admin), "Origin": same}) as resp:
        assert resp.status == 200
    try:
        await session.ws_connect(env.ws_url, headers={"Origin": "http://evil.example"})
        raise AssertionError("a foreign origin must not open the WebSocket")
    except aiohttp.WSServerHandshakeError as err:
        assert err.status == 403


async def test_allowed_origins_from_config(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  allowed_origins: ['http://vr.example']\n")
    env = await start_env(tmp_path)
    try:
        async with session.get(env.url + "/api/", headers={**bearer(env.admin), "Origin": "http://vr.example"}) as r:
            assert r.status == 200
    finally:
        await env.hub.async_stop()


async def test_failed_logins_are_rate_limited(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=3, window=60))
    try:
        for _ in range(3):
            async with session.get(env.url + "/api/", headers=bearer("qh_guess")) as resp:
                assert resp.status == 401
        async with session.get(env.url + "/api/", headers=bearer(env.admin)) as resp:
            assert resp.status == 429  # even a right token waits: guessing must not be cheap
        ws = await session.ws_connect(env.ws_url)
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": env.admin})
        reply = await ws.receive_json()
        assert reply["type"] == "auth_invalid" and "Too many" in reply["message"]
        await ws.close()
        async with session.get(env.url + "/api/health") as resp:
            assert resp.status == 200
    finally:
        await env.hub.async_stop()


async def test_revoked_token_is_refused(env: Env, session: aiohttp.ClientSession) -> None:
    token = next(t for t in env.hub.tokens.list() if t.name == "viewer")
    async with session.get(env.url + "/api/", headers=bearer(env.read_only)) as resp:
        assert resp.status == 200
    env.hub.tokens.revoke(token.id)
    async with session.get(env.url + "/api/", headers=bearer(env.read_only)) as resp:
        assert resp.status == 401


async def test_oversized_rest_body(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.post(env.url + "/api/services/light/turn_on", headers=bearer(env.admin),
                            data=b"{" + b" " * 200_000 + b"}") as resp:
        assert resp.status == 413


async def test_tls_when_configured(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (tmp_path / "configuration.yaml").write_text(f"hub:\n  tls_certificate: {cert}\n  tls_key: {key}\n")
    env = await start_env(tmp_path)
    try:
        assert env.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with session.get(env.url + "/api/", headers=bearer(env.admin), ssl=context) as resp:
            assert resp.status == 200 and (await resp.json())["message"] == "API running."
        ws = await session.ws_connect(env.url.replace("https", "wss", 1) + "/api/websocket", ssl=context)
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": env.admin})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
        await ws.receive_json()
        for i in range(200):  # a burst: batched frames through the TLS transport
            env.hub.states.async_set("sensor.tls", i)
        got = [(await ws.receive_json())["event"]["data"]["new_state"]["state"] for _ in range(200)]
        assert got == [str(i) for i in range(200)]
        await ws.close()
        plain = env.url.replace("https://", "http://")
        try:
            async with session.get(plain + "/api/health") as resp:
                raise AssertionError(f"plain HTTP answered {resp.status}")
        except aiohttp.ClientError:
            pass
    finally:
        await env.hub.async_stop()


async def test_stop_closes_clients(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path)
    ws = await session.ws_connect(env.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": env.admin})
    await ws.receive_json()
    await env.hub.async_stop()
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.GOING_AWAY


async def test_unusable_port_or_certificate_is_a_clear_config_error(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        hub = Hub(tmp_path / "a", load_config(tmp_path / "a"), recorder=False)
        hub.add_component(ApiServer("127.0.0.1", busy.getsockname()[1]))
        with pytest.raises(ConfigError, match=r"hub\.port.*cannot listen"):
            await hub.async_start()
    finally:
        busy.close()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "configuration.yaml").write_text(f"hub:\n  tls_certificate: {tmp_path}/missing.pem\n")
    hub = Hub(tmp_path / "b", load_config(tmp_path / "b"), recorder=False)
    hub.add_component(ApiServer("127.0.0.1", 0))
    with pytest.raises(ConfigError, match=r"hub\.tls_certificate.*cannot be loaded"):
        await hub.async_start()


async def test_token_revoked_by_another_process_stops_working(env: Env, session: aiohttp.ClientSession) -> None:
    from qilu_hub.const import REGISTRY_DB
    from qilu_hub.storage import RegistryStore
    from qilu_hub.tokens import TokenStore

    async with session.get(env.url + "/api/", headers=bearer(env.read_only)) as resp:
        assert resp.status == 200  # now cached in the hub
    other = RegistryStore(env.hub.config_dir / REGISTRY_DB)  # as `qilu-hub token revoke` opens it
    token = next(t for t in TokenStore(other).list() if t.name == "viewer")
    assert TokenStore(other).revoke(token.id)
    other.close()
    async with session.get(env.url + "/api/", headers=bearer(env.read_only)) as resp:
        assert resp.status == 401


async def test_connection_limit(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path, max_websockets=2)
    try:
        first = await session.ws_connect(env.ws_url)
        second = await session.ws_connect(env.stream_url)  # unauthenticated sockets count too
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(env.ws_url)
        assert err.value.status == 503
        await first.close()
        await asyncio.sleep(0.1)
        third = await session.ws_connect(env.ws_url)
        assert (await third.receive_json())["type"] == "auth_required"
        await third.close()
        await second.close()
    finally:
        await env.hub.async_stop()



async def test_two_hubs_in_one_process_do_not_share_commands(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    """A WebSocket or stream command added to one API server is unknown to another in the same process."""
    from .test_stream import connect, recv, send

    first = await start_env(tmp_path / "a")
    second = await start_env(tmp_path / "b")
    try:
        first.api.ws_commands["qilu/only_here"] = lambda conn, msg_id, msg: conn.send(
            json.dumps({"id": msg_id, "type": "result", "success": True, "result": "first"}))
        first.api.stream_commands["only_here"] = lambda conn, msg_id, msg: "first"
        for env, known in ((first, True), (second, False)):
            ws = await session.ws_connect(env.ws_url)
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json({"type": "auth", "access_token": env.admin})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json({"id": 1, "type": "qilu/only_here"})
            answer = await ws.receive_json()
            assert answer["success"] is known and (known or answer["error"]["code"] == "unknown_command"), answer
            await ws.close()
            stream = await connect(env, session)
            await send(stream, {"id": 1, "type": "only_here"})
            reply = await recv(stream)
            assert reply["success"] is known and (known or reply["error"]["code"] == "unknown_command"), reply
            await stream.close()
        # Both still have the label commands, each in its own registry.
        for env in (first, second):
            assert "qilu/recognition/labels/suggest" in env.api.ws_commands
            assert "labels/suggest" in env.api.stream_commands
    finally:
        await first.hub.async_stop()
        await second.hub.async_stop()
