"""The dashboard against a hostile web: sign-in by POST only (no token in a URL, no login CSRF), and headers
that forbid framing, inline script, Referer leaks and caching of home state, checked in a real Chromium too."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright, expect

from qilu_hub.api import LoginLimiter

from .conftest import LIGHT, Env, bearer, start_env
from .test_dashboard import ARGS, CHROMIUM, sign_in, until_true

LOGIN = "/login"


async def test_sign_in_by_post_sets_the_cookie(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/") as resp:
        page = await resp.text()
        assert resp.status == 401 and 'method="post" action="/login"' in page and "<script" not in page
    async with session.post(env.url + LOGIN, data={"token": env.admin}, headers={"Origin": env.url},
                            allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/"
        cookie = resp.cookies["qilu_token"]
        assert cookie.value == env.admin and cookie["samesite"] == "Strict" and cookie["httponly"]
    async with session.get(env.url + "/", headers={"Cookie": f"qilu_token={env.admin}"}) as resp:
        assert resp.status == 200 and '<script src="/static/app.js">' in await resp.text()


async def test_a_token_in_the_url_no_longer_signs_in(env: Env, session: aiohttp.ClientSession) -> None:
    async with session.get(env.url + "/", params={"token": env.admin}, allow_redirects=False) as resp:
        page = await resp.text()
        assert resp.status == 401 and "qilu_token" not in resp.cookies and "Set-Cookie" not in resp.headers
        assert "no longer sign in" in page and env.admin not in page


async def test_sign_in_without_or_from_a_foreign_origin_is_refused(tmp_path: Path,
                                                                    session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=2, window=60))
    try:
        # A form on another site (or a sandboxed frame: "null") must not sign the browser in with a token of the
        # attacker's choosing; neither may a request that carries no Origin at all.
        for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
            async with session.post(env.url + LOGIN, data={"token": env.admin}, headers=headers,
                                    allow_redirects=False) as resp:
                assert resp.status == 403, headers
                assert "Set-Cookie" not in resp.headers
        # Wrong tokens through the form count as failed logins, like any other.
        for token in ("qh_guess", ""):
            async with session.post(env.url + LOGIN, data={"token": token}, headers={"Origin": env.url},
                                    allow_redirects=False) as resp:
                assert resp.status == 401 and "Invalid access token" in await resp.text()
        async with session.post(env.url + LOGIN, data={"token": env.admin}, headers={"Origin": env.url},
                                allow_redirects=False) as resp:
            assert resp.status == 429 and "Set-Cookie" not in resp.headers
            assert "Too many failed login attempts" in await resp.text()  # shown on the sign-in page
    finally:
        await env.hub.async_stop()


async def test_hardening_headers_on_every_answer(env: Env, session: aiohttp.ClientSession) -> None:
    cookie = {"Cookie": f"qilu_token={env.admin}"}
    answers = {
        "login page": ("GET", "/", {}),
        "dashboard": ("GET", "/", cookie),
        "states": ("GET", "/api/states", bearer(env.admin)),
        "one state": ("GET", f"/api/states/{LIGHT}", bearer(env.admin)),
        "registry": ("GET", "/api/dashboard/registry", cookie),
        "error": ("GET", "/api/nothing-here", bearer(env.admin)),
        "health": ("GET", "/api/health", {}),
        "script": ("GET", "/static/app.js", cookie),
    }
    for what, (method, path, headers) in answers.items():
        async with session.request(method, env.url + path, headers=headers) as resp:
            await resp.read()
            h = resp.headers
            csp = {d.split()[0]: d.split()[1:] for d in h.get("Content-Security-Policy", "").split("; ") if d}
            assert csp.get("script-src") == ["'self'"] and csp.get("frame-ancestors") == ["'none'"], (what, h)
            assert csp.get("default-src") == ["'self'"] and csp.get("object-src") == ["'none'"], (what, h)
            assert h.get("X-Frame-Options") == "DENY" and h.get("X-Content-Type-Options") == "nosniff", (what, h)
            # The sign-in page keeps its Origin (see dashboard.login_page); both send nothing to other sites.
            referrer = "same-origin" if what == "login page" else "no-referrer"
            assert h.get("Referrer-Policy") == referrer, (what, h)
            if what != "script":
                assert "no-store" in h.get("Cache-Control", ""), (what, h)
            policy = dict(item.split("=", 1) for item in h.get("Permissions-Policy", "").split(", ") if item)
            assert policy.get("camera") == "(self)" and policy.get("xr-spatial-tracking") == "(self)", (what, h)
            assert all(policy.get(f) == "()" for f in ("microphone", "geolocation", "payment", "usb")), (what, h)


async def test_dashboard_works_under_its_content_security_policy(env: Env) -> None:
    """Real Chromium: no CSP violation while the dashboard signs in, goes live and sends a command; a script
    injected inline afterwards is blocked (so the policy really is in force and the listener hears it)."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                                       "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
            await sign_in(page, env.url, env.admin)
            await expect(page.get_by_test_id("connection")).to_have_text("live")  # fetch, ticket, WebSocket
            await page.get_by_test_id(f"switch-{LIGHT}").click()
            await expect(page.get_by_test_id(f"state-{LIGHT}")).to_have_text("On · 100%")
            assert await page.evaluate("window.__csp") == []
            assert not [line for line in console if "Content Security Policy" in line], console
            # The Permissions-Policy is in force as written (Chromium names any feature it does not know)
            allowed = await page.evaluate("['camera', 'xr-spatial-tracking', 'microphone', 'geolocation', 'usb']"
                                          ".map((f) => document.featurePolicy.allowsFeature(f))")
            assert allowed == [True, True, False, False, False]
            assert not [line for line in console if "Permissions-Policy" in line], console
            # The hub's problem list shows on top of the page as the hub reports a problem, and goes when cleared
            problems = page.get_by_test_id("problems")
            await expect(problems).to_be_hidden()
            env.hub.problems.report("scenes:/config/scenes/a.yaml", "scenes", "scene file refused: <b>fly</b>",
                                    file="/config/scenes/a.yaml", line=5)
            await expect(problems).to_be_visible()
            await expect(page.get_by_test_id("problem")).to_contain_text("scene file refused: <b>fly</b>")  # as text
            await expect(page.get_by_test_id("problem-where")).to_have_text("/config/scenes/a.yaml:5")
            env.hub.problems.clear("scenes:/config/scenes/a.yaml")
            await expect(problems).to_be_hidden()
            assert await page.evaluate("window.__csp") == []
            assert errors == []
            await page.evaluate("() => { const s = document.createElement('script'); "
                                "s.textContent = 'window.__inline = 1'; document.body.append(s); }")
            await until_true(page, "window.__csp.length > 0")
            assert await page.evaluate("window.__inline") is None
            assert (await page.evaluate("window.__csp"))[0].startswith("script-src")
        finally:
            await browser.close()


async def test_openapi_lists_what_the_label_routes_answer_without_labels(env: Env,
                                                                         session: aiohttp.ClientSession) -> None:
    """This hub has no household labels: every label route answers 404, and its operation must list it (the
    schemathesis fuzz, fuzz/run.py rest, fails on an undocumented status)."""
    async with session.get(env.url + "/api/openapi.json", headers=bearer(env.admin)) as resp:
        paths = (await resp.json())["paths"]
    calls = [("get", "/api/recognition/labels", None), ("post", "/api/recognition/labels", {"scene": "cooking"}),
             ("post", "/api/recognition/labels/stop", {}),
             ("patch", "/api/recognition/labels/{label_id}", {"note": "x"}),
             ("delete", "/api/recognition/labels/{label_id}", None)]
    for method, path, body in calls:
        url = env.url + path.replace("{label_id}", "l1")
        async with session.request(method, url, json=body, headers=bearer(env.admin)) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == "not_found", (method, path)
        assert "404" in paths[path][method]["responses"], (method, path)
