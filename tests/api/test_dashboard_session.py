"""The dashboard's session in a real Chromium: an HttpOnly cookie the page cannot read, tickets for its
WebSocket, and other origins (same-site on another port, or another site) unable to use either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect

from .conftest import LIGHT, Env
from .test_dashboard import ARGS, CHROMIUM, sign_in

# What a page on another origin tries with the owner's browser: mint a ticket with the cookie, read the
# token from a response, open the hub's WebSocket (the cookie rides on the upgrade when same-site).
ATTACK = """async (hub) => {
  const out = {};
  try {
    // no-cors: the browser sends it (with the cookie where same-site) and hides the answer; the hub must refuse it.
    const res = await fetch(hub + "/api/dashboard/ws_ticket",
                            { method: "POST", credentials: "include", mode: "no-cors" });
    out.ticket = res.type + ":" + await res.text();
  } catch (err) { out.ticket = "fetch refused: " + err.name; }
  try {
    const res = await fetch(hub + "/api/states", { credentials: "include" });
    out.states = await res.text();
  } catch (err) { out.states = "fetch refused: " + err.name; }
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket(hub.replace("http", "ws") + "/api/websocket");
    ws.onmessage = (e) => {
      if (JSON.parse(e.data).type === "auth_required") ws.send(JSON.stringify({ type: "auth" }));
      else resolve(e.data);
    };
    ws.onerror = () => resolve("error");
    ws.onclose = (e) => resolve("closed " + e.code);
  });
  return out;
}"""


@pytest.fixture
async def other_origin() -> AsyncIterator[int]:
    """A page served from another port on this machine (a guest's device would be another host)."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>elsewhere</title><p>elsewhere</p>", content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def test_cookie_is_httponly_and_the_dashboard_still_goes_live(env: Env) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await sign_in(page, env.url, env.admin)
            await expect(page.get_by_test_id("connection")).to_have_text("live")
            assert env.admin not in await page.evaluate("document.cookie")
            (cookie,) = [c for c in await context.cookies() if c["name"] == "qilu_token"]
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            await page.get_by_test_id(f"switch-{LIGHT}").click()  # REST with the cookie alone
            await expect(page.get_by_test_id(f"state-{LIGHT}")).to_have_text("On · 100%")
            assert len(env.api.tickets) == 0  # the page's ticket was used up by its WebSocket
            await page.reload()  # a reload logs in again with a fresh ticket
            await expect(page.get_by_test_id("connection")).to_have_text("live")
            assert errors == []
        finally:
            await browser.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # same site, other port / another site
async def test_other_origin_cannot_use_the_session(env: Env, other_origin: int, host: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context()
            owner = await context.new_page()
            await sign_in(owner, env.url, env.admin)
            await expect(owner.get_by_test_id("connection")).to_have_text("live")
            connections = len(env.api.ha_connections)
            evil = await context.new_page()
            await evil.goto(f"http://{host}:{other_origin}/")
            out = await evil.evaluate(ATTACK, env.url)
            assert out["ticket"] == "opaque:", out
            assert len(env.api.tickets) == 0  # the hub minted nothing (the owner's ticket was used up)
            assert "state" not in out["states"]
            assert out["ws"] in ("error", "closed 1006"), out  # the upgrade itself is refused (403)
            assert len(env.api.ha_connections) == connections
        finally:
            await browser.close()
