"""No secret reaches a log or the database in clear: tokens (created, used, mistyped) and MQTT passwords."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import msgpack
import pytest

from qilu_hub import Scopes
from qilu_hub.virtual import DEFAULT_APPLIANCES
from tests.api.conftest import Env, bearer
from tests.mqtt.conftest import settings_for, start_hub, wait_for
from tests.testbeds.mosquitto import Mosquitto


def _all_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)


async def test_tokens_never_logged_or_stored_in_clear(env: Env, session: aiohttp.ClientSession,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, secret = env.hub.tokens.create("phone", Scopes(read_only=True))
    typo = secret[:-1] + ("a" if secret[-1] != "a" else "b")  # a mistyped real token is nearly the secret
    for token in (secret, typo):
        async with session.get(f"{env.url}/api/states", headers=bearer(token)) as resp:
            assert resp.status in (200, 401)
        ws = await session.ws_connect(env.ws_url)
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        await ws.receive_json()
        await ws.close()
        stream = await session.ws_connect(env.stream_url)
        await stream.send_bytes(msgpack.packb({"type": "auth", "access_token": token}))
        await stream.receive_bytes()
        await stream.close()
        async with session.get(f"{env.url}/", headers={"Cookie": f"qilu_token={token}"}) as resp:
            await resp.read()
    logged = _all_logged(caplog)
    for token in (secret, typo, env.admin):
        assert token not in logged
        assert token[8:24] not in logged  # not even a recognisable part
    database = b"".join(p.read_bytes() for p in Path(env.hub.config_dir).glob("registry.db*"))
    assert secret.encode() not in database and env.admin.encode() not in database


async def test_mqtt_password_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    hubs = []
    try:
        assert broker.tls_port is not None
        good = settings_for(broker, "hub_ok", port=broker.tls_port, tls=True, ca_file=str(broker.certs["ca"]),
                            username=broker.username, password=broker.password)
        hub, bridge = await start_hub(tmp_path / "a", good, DEFAULT_APPLIANCES)
        hubs.append(hub)
        await wait_for(bridge.connected.is_set, what="connection with password")
        wrong_password = "wrong-Pa55word-that-must-not-leak"
        bad = settings_for(broker, "hub_bad", port=broker.tls_port, tls=True, ca_file=str(broker.certs["ca"]),
                           username=broker.username, password=wrong_password)
        bad_hub, bad_bridge = await start_hub(tmp_path / "b", bad, DEFAULT_APPLIANCES)
        hubs.append(bad_hub)
        await wait_for(lambda: bad_bridge.stats.last_error is not None, what="refusal")
        logged = _all_logged(caplog)
        assert "hub_bad" in logged or bad_bridge.stats.last_error  # the refusal itself is reported
        for secret in (broker.password, wrong_password):
            assert secret not in logged
            assert secret not in (bad_bridge.stats.last_error or "")
            assert secret not in repr(bad_bridge.settings)  # reprs end up in tracebacks and debug logs
    finally:
        for h in hubs:
            await h.async_stop()
        broker.stop()
