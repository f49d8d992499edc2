"""Dashboard WebSocket tickets: minted by a cookie from this origin only, single use, short-lived, sockets only."""

from __future__ import annotations

import aiohttp
import msgpack

from qilu_hub.api.tickets import TICKET_PREFIX, TicketStore

from .conftest import LIGHT, Env, bearer

TICKET_URL = "/api/dashboard/ws_ticket"


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"qilu_token={token}"}


async def ticket_for(env: Env, session: aiohttp.ClientSession, token: str) -> str:
    async with session.post(env.url + TICKET_URL, headers={**cookie(token), "Origin": env.url}) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        ticket: str = (await resp.json())["ticket"]
    assert ticket.startswith(TICKET_PREFIX) and token not in ticket
    return ticket


async def ha_auth(env: Env, session: aiohttp.ClientSession, secret: str) -> str:
    async with session.ws_connect(env.ws_url) as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": secret})
        kind: str = (await ws.receive_json())["type"]
        return kind


def test_store_redeems_once_and_expires() -> None:
    store = TicketStore(lifetime=30)
    ticket = store.issue("qh_secret")
    assert store.redeem(ticket) == "qh_secret"
    assert store.redeem(ticket) is None
    assert store.redeem("qt_made_up") is None
    store.lifetime = -1  # already expired when issued
    assert store.redeem(store.issue("qh_secret")) is None


def test_store_is_bounded() -> None:
    store = TicketStore(max_outstanding=10)
    tickets = [store.issue(f"qh_{i}") for i in range(25)]
    assert len(store) == 10
    assert store.redeem(tickets[0]) is None  # the oldest gave way
    assert store.redeem(tickets[-1]) == "qh_24"


async def test_ticket_logs_in_once_on_the_ha_websocket(env: Env, session: aiohttp.ClientSession) -> None:
    ticket = await ticket_for(env, session, env.admin)
    assert await ha_auth(env, session, ticket) == "auth_ok"
    assert await ha_auth(env, session, ticket) == "auth_invalid"  # single use


async def test_ticket_works_on_the_stream_with_the_tokens_scope(env: Env, session: aiohttp.ClientSession) -> None:
    ticket = await ticket_for(env, session, env.read_only)
    async with session.ws_connect(env.stream_url) as ws:
        await ws.send_bytes(msgpack.packb({"type": "auth", "access_token": ticket}))
        assert msgpack.unpackb((await ws.receive()).data)["type"] == "auth_ok"
        await ws.send_bytes(msgpack.packb({"id": 1, "type": "call", "entity_id": LIGHT, "command": "turn_on"}))
        reply = msgpack.unpackb((await ws.receive()).data)
        assert reply["error"]["code"] == "unauthorized"  # the ticket carries its token's scope, no more


async def test_ticket_is_no_rest_credential(env: Env, session: aiohttp.ClientSession) -> None:
    ticket = await ticket_for(env, session, env.admin)
    async with session.get(env.url + "/api/states", headers=bearer(ticket)) as resp:
        assert resp.status == 401
    async with session.get(env.url + "/api/states", headers=cookie(ticket)) as resp:
        assert resp.status == 401


async def test_cookie_request_without_origin_gets_no_ticket(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.post(env.url + TICKET_URL, headers=cookie(env.admin)) as resp:
        assert resp.status == 403
    async with session.post(env.url + TICKET_URL, headers={**cookie(env.admin), "Origin": "http://evil.example"}
                            ) as resp:
        assert resp.status == 403
    async with session.get(env.url + TICKET_URL, headers={**cookie(env.admin), "Origin": env.url}) as resp:
        assert resp.status == 405  # minting is a POST: never from a link or an <img>
    assert len(env.api.tickets) == 0
    # A non-browser client with the token in a header may ask without an Origin.
    async with session.post(env.url + TICKET_URL, headers=bearer(env.admin)) as resp:
        assert resp.status == 200
    async with session.post(env.url + TICKET_URL, headers={**cookie("qh_wrong"), "Origin": env.url}) as resp:
        assert resp.status == 401


async def test_ticket_of_a_revoked_token_is_refused(env: Env, session: aiohttp.ClientSession) -> None:
    ticket = await ticket_for(env, session, env.read_only)
    viewer = next(t for t in env.hub.tokens.list() if t.name == "viewer")
    env.hub.tokens.revoke(viewer.id)
    assert await ha_auth(env, session, ticket) == "auth_invalid"


async def test_expired_ticket_is_refused(env: Env, session: aiohttp.ClientSession) -> None:
    env.api.tickets.lifetime = -1
    ticket = await ticket_for(env, session, env.admin)
    assert await ha_auth(env, session, ticket) == "auth_invalid"
