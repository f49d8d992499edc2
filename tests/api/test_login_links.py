"""Connecting a phone without typing a token (one-time sign-in links), and adopting with a name and a room, over
HTTP against a real hub: who may, what the link can and cannot do, and that refused input changes nothing."""

from __future__ import annotations

from typing import Any

import aiohttp

from qilu_hub import Hub

from .conftest import Env, bearer

CONNECT = "/api/dashboard/connect"


async def _connect(session: aiohttp.ClientSession, env: Env, body: Any, token: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with session.post(env.url + CONNECT, json=body, headers=headers or bearer(token or env.admin)) as resp:
        return resp.status, await resp.json()


async def _sign_in_with(session: aiohttp.ClientSession, env: Env, url: str) -> aiohttp.ClientResponse:
    ticket = url.rsplit("/", 1)[1]
    return await session.post(env.url + "/login", data={"ticket": ticket}, headers={"Origin": env.url},
                              allow_redirects=False)


async def test_a_link_signs_one_browser_in_once_with_the_scoped_token(env: Env, session: aiohttp.ClientSession) -> None:
    status, body = await _connect(session, env, {"name": "Grandma's phone", "read_only": True, "areas": ["kitchen"]})
    assert status == 200, body
    url = body["url"]
    assert url.startswith(env.url + "/login/link/qt_") and body["expires_in"] == 600
    assert body["qr_svg"].startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in body["qr_svg"]
    [token] = [t for t in env.hub.tokens.list() if t.name == "Grandma's phone"]
    assert body["token"]["id"] == token.id and "secret" not in str(body) and "qh_" not in str(body)
    assert token.scopes.read_only and token.scopes.areas == frozenset({"kitchen"}) and not token.scopes.admin

    # Opening the link (a camera app, a chat's link preview) does not use it up: only its button's POST does.
    for _ in range(2):
        async with session.get(url) as resp:
            page = await resp.text()
            assert resp.status == 200 and 'name="ticket"' in page and "<script" not in page
            assert "Set-Cookie" not in resp.headers
    async with await _sign_in_with(session, env, url) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/"
        secret = resp.cookies["qilu_token"].value
        assert resp.cookies["qilu_token"]["httponly"]
    assert env.hub.tokens.verify(secret) == token  # the cookie is the new token, never the admin's
    async with session.get(env.url + "/api/dashboard/registry", headers=bearer(secret)) as resp:
        registry = await resp.json()
        assert registry["token"]["name"] == "Grandma's phone" and [a["id"] for a in registry["areas"]] == ["kitchen"]
    async with await _sign_in_with(session, env, url) as resp:  # used: refused, and counted as a failed login
        assert resp.status == 401 and "Set-Cookie" not in resp.headers
        assert "used already or has expired" in await resp.text()


async def test_a_headsets_link_opens_the_immersive_view(env: Env, session: aiohttp.ClientSession) -> None:
    status, body = await _connect(session, env, {"name": "Quest", "open": "xr"})
    assert status == 200 and body["url"].endswith("?open=xr")
    async with session.get(body["url"]) as resp:
        assert 'name="open" value="xr"' in await resp.text()
    ticket = body["url"].split("?")[0].rsplit("/", 1)[1]
    async with session.post(env.url + "/login", data={"ticket": ticket, "open": "xr"}, headers={"Origin": env.url},
                            allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/xr/"
        cookie = resp.cookies["qilu_token"].value
    async with session.get(env.url + "/xr/", headers={"Cookie": f"qilu_token={cookie}"}) as resp:
        assert resp.status == 200  # the WebXR client, which gets its WebSocket ticket with this cookie
    # Only the listed places: anything else opens the dashboard (no open redirect), or is refused up front.
    _, body = await _connect(session, env, {"name": "Other"})
    ticket = body["url"].rsplit("/", 1)[1]
    async with session.post(env.url + "/login", data={"ticket": ticket, "open": "https://evil.example/"},
                            headers={"Origin": env.url}, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/"
    status, _ = await _connect(session, env, {"name": "x", "open": "https://evil.example/"})
    assert status == 400


async def test_a_link_is_no_token_and_no_websocket_ticket(env: Env, session: aiohttp.ClientSession) -> None:
    _, body = await _connect(session, env, {"name": "headset"})
    ticket = body["url"].rsplit("/", 1)[1]
    async with session.get(env.url + "/api/states", headers=bearer(ticket)) as resp:
        assert resp.status == 401
    async with session.ws_connect(env.ws_url) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": ticket})
        assert (await ws.receive_json())["type"] == "auth_invalid"
    async with await _sign_in_with(session, env, body["url"]) as resp:  # still unused: those were not sign-ins
        assert resp.status == 303


async def test_only_an_admin_from_the_hubs_own_page_may_connect_a_phone(env: Env,
                                                                         session: aiohttp.ClientSession) -> None:
    before = len(env.hub.tokens.list())
    for token in (env.read_only, env.kitchen):
        status, body = await _connect(session, env, {"name": "x"}, token)
        assert status == 403 and "admin" in body["message"]
    # The admin's cookie without the page's Origin (a form or a redirect from elsewhere): refused.
    status, _ = await _connect(session, env, {"name": "x"}, headers={"Cookie": f"qilu_token={env.admin}"})
    assert status == 403
    status, _ = await _connect(session, env, {"name": "x"},
                               headers={"Cookie": f"qilu_token={env.admin}", "Origin": "http://evil.example"})
    assert status == 403
    for bad in ({}, {"name": ""}, {"name": "x" * 61}, {"name": "a\nb"}, {"name": "x", "read_only": "yes"},
                {"name": "x", "areas": []}, {"name": "x", "areas": ["attic"]}, {"name": "x", "areas": "kitchen"},
                ["name"]):
        status, body = await _connect(session, env, bad)
        assert status == 400 and body["message"], bad
    assert len(env.hub.tokens.list()) == before  # nothing refused made a token


class NamingInbox:
    """The discovery protocol with one pending appliance whose adoption creates a device, as discovery's does."""

    name = "discovery"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.state = "pending"

    async def async_start(self, hub: Hub) -> None:
        pass

    async def async_stop(self) -> None:
        pass

    def inbox_entries(self) -> list[dict[str, Any]]:
        return [{"key": "lamp-1", "title": "Lamp", "state": self.state}]

    async def async_adopt(self, key: str, bind_key: str | None = None) -> str:
        self.state = "adopted"
        device = self.hub.devices.async_get_or_create(source="test", name="Lamp", identifiers=[("test", key)])
        return device.id

    async def async_ignore(self, key: str) -> None:
        self.state = "ignored"

    async def async_unignore(self, key: str) -> None:
        self.state = "pending"


async def test_adopt_names_the_device_and_puts_it_in_a_room(env: Env, session: aiohttp.ClientSession) -> None:
    inbox = NamingInbox(env.hub)
    env.hub.components["discovery"] = inbox
    url = env.url + "/api/discovery/lamp-1/adopt"
    for bad in ({"area_id": "attic"}, {"name": 5}, {"name": "x" * 101}, {"name": "a\x00b"}):
        async with session.post(url, json=bad, headers=bearer(env.admin)) as resp:
            assert resp.status == 400, bad
    assert inbox.state == "pending" and not env.hub.devices.find([("test", "lamp-1")])  # refused before adopting
    async with session.post(url, json={"name": " Reading lamp ", "area_id": "bedroom"},
                            headers=bearer(env.admin)) as resp:
        assert resp.status == 200
        device_id = (await resp.json())["result"]
    device = env.hub.devices.get(device_id)
    assert device is not None and device.name_by_user == "Reading lamp" and device.area_id == "bedroom"


async def test_the_admin_lists_and_revokes_accesses(env: Env, session: aiohttp.ClientSession) -> None:
    tokens_url = env.url + "/api/dashboard/tokens"
    async with session.get(tokens_url, headers=bearer(env.read_only)) as resp:
        assert resp.status == 403
    async with session.get(tokens_url, headers=bearer(env.admin)) as resp:
        listed = (await resp.json())["tokens"]
    assert {t["name"] for t in listed} == {"admin", "viewer", "kitchen headset"}
    assert "qh_" not in str(listed) and [t["name"] for t in listed if t["current"]] == ["admin"]
    kitchen = next(t for t in listed if t["name"] == "kitchen headset")
    assert kitchen["areas"] == ["kitchen"] and not kitchen["read_only"]
    admin_id = next(t["id"] for t in listed if t["current"])
    revoke = env.url + "/api/dashboard/tokens/{}/revoke"
    for token_id, headers, status in (
            (kitchen["id"], bearer(env.read_only), 403),  # not an admin
            (kitchen["id"], {"Cookie": f"qilu_token={env.admin}"}, 403),  # the cookie without the page's Origin
            (admin_id, bearer(env.admin), 400),  # its own token: the page would lock itself out
            ("nope", bearer(env.admin), 404)):
        async with session.post(revoke.format(token_id), headers=headers) as resp:
            assert resp.status == status, (token_id, headers)
    assert env.hub.tokens.verify(env.kitchen) is not None
    async with session.post(revoke.format(kitchen["id"]), headers=bearer(env.admin)) as resp:
        assert resp.status == 200
    assert env.hub.tokens.verify(env.kitchen) is None
    async with session.get(tokens_url, headers=bearer(env.admin)) as resp:
        assert kitchen["id"] not in {t["id"] for t in (await resp.json())["tokens"]}


async def test_signing_in_returns_to_the_page_that_asked_and_never_leaves_the_hub(
        env: Env, session: aiohttp.ClientSession) -> None:
    """A headset signed out on /xr/ gets the form there; signing in brings it back to /xr/ (its query kept, a
    token in it dropped), not to the dashboard. Only a path on the hub is followed: no open redirect."""
    async with session.get(env.url + "/xr/?scene=living_room_vr&token=qh_old") as resp:
        page = await resp.text()
        assert resp.status == 401 and 'data-testid="login-token"' in page
        assert 'action="/login?next=%2Fxr%2F%3Fscene%3Dliving_room_vr"' in page and "qh_old" not in page
    async with session.get(env.url + "/") as resp:
        assert 'action="/login"' in await resp.text()  # the dashboard's own form: back to /

    async def sign_in(next_path: str, token: str = env.admin) -> aiohttp.ClientResponse:
        return await session.post(env.url + "/login", params={"next": next_path}, data={"token": token},
                                  headers={"Origin": env.url}, allow_redirects=False)

    async with await sign_in("/xr/?scene=living_room_vr") as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/xr/?scene=living_room_vr"
        assert env.hub.tokens.verify(resp.cookies["qilu_token"].value) is not None
    async with await sign_in("/xr/", "qh_wrong") as resp:  # a typo: the form again, still going back to /xr/
        assert resp.status == 401 and 'action="/login?next=%2Fxr%2F"' in await resp.text()
    # Anything that is not a path on this hub (as browsers read it) goes to the dashboard.
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example/", "/\t/evil.example/",
                      "http:evil.example", "javascript:alert(1)", "xr/", "/login"):
        async with await sign_in(elsewhere) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/", elsewhere
