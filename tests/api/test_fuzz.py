"""Random messages at both WebSocket protocols: answers or errors, never a dead connection or hub."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

import aiohttp
import msgpack

from .conftest import LIGHT, Env

TYPES = ["ping", "get_states", "get_config", "get_services", "subscribe_events", "unsubscribe_events",
         "subscribe_entities", "call_service", "supported_features", "subscribe", "unsubscribe", "call", "nope",
         None, 7]
SEED = int(os.environ.get("FUZZ_SEED", "3"))
KEYS = ["id", "type", "domain", "service", "service_data", "target", "entity_id", "entity_ids", "event_type",
        "subscription", "features", "entities", "areas", "capabilities", "command", "args"]


def value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 2 else 6)
    if choice == 0:
        return rng.choice([None, True, False])
    if choice == 1:
        return rng.choice([0, -1, 2**40, 3.5, float("inf")]) if rng.random() < 0.3 else rng.randrange(100)
    if choice in (2, 3):
        return rng.choice(["light", "turn_on", LIGHT, "switch", "toggle", "", "x" * 300, "☃", "*"])
    if choice == 4:
        return rng.choice(TYPES)
    if choice == 5:
        return rng.choice(["kitchen", "on_off", "brightness"])
    if choice == 6:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice([*KEYS, "brightness", "temperature"]): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def message(rng: random.Random, i: int) -> dict[str, Any]:
    msg = {key: value(rng) for key in rng.sample(KEYS, rng.randrange(1, 6))}
    msg["type"] = rng.choice(TYPES)
    if rng.random() < 0.8:
        msg["id"] = i
    return msg


async def test_random_home_assistant_messages(env: Env, session: aiohttp.ClientSession) -> None:
    rng = random.Random(SEED)
    ws = await session.ws_connect(env.ws_url)
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": env.admin})
    await ws.receive_json()
    for i in range(1, 301):
        text = json.dumps(message(rng, i), allow_nan=True)
        await ws.send_str(text)
    await asyncio.sleep(0.5)
    await ws.send_json({"id": 10**9, "type": "ping"})
    seen_types: set[str] = set()
    while True:
        data = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        for msg in data if isinstance(data, list) else [data]:
            seen_types.add(msg["type"])
            if msg["type"] == "result" and not msg["success"]:
                assert msg["error"]["message"]
                assert msg["error"]["code"] != "unknown_error", msg  # an internal failure, not a refusal
        if isinstance(data, dict) and data.get("id") == 10**9:
            break
    assert "result" in seen_types and data == {"id": 10**9, "type": "pong"}
    assert env.hub.bus.errors == 0
    await ws.close()


async def test_random_stream_messages(env: Env, session: aiohttp.ClientSession) -> None:
    rng = random.Random(SEED + 1)
    ws = await session.ws_connect(env.stream_url)
    await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": env.admin}))
    await ws.receive()
    for i in range(300):
        if rng.random() < 0.1:
            await ws.send_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        else:
            await ws.send_bytes(msgpack.packb(message(rng, i)))
    await asyncio.sleep(0.5)
    await ws.send_bytes(msgpack.packb({"type": "ping", "id": "last"}))
    while True:
        msg = msgpack.unpackb((await asyncio.wait_for(ws.receive(), 5)).data)
        assert msg["type"] in ("result", "snapshot", "delta", "pong")
        if msg["type"] == "result" and not msg["success"]:
            assert msg["error"]["message"]
            assert msg["error"]["code"] != "unknown_error", msg
        if msg == {"type": "pong", "id": "last"}:
            break
    assert env.hub.bus.errors == 0
    await ws.close()
