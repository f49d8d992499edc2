"""The hub's WebXR client (/xr/) as a VR developer would test it: Debian's headless Chromium driven by Playwright, with
Meta's IWER emulating a Quest 3 (stereo, controllers, hands, anchors), against a real hub with the demo appliances.

Each check looks at both ends: the hub's state (or its spatial registry) and the pixels of the frames the page
drew afterwards, read back in the frame loop under a control's centre. Screenshots go to
tests/xr_web/artifacts/ (gitignored). One browser for the module; each test its own page.
Recipe and pitfalls: press and release select as two awaited steps, forceInstall, stereoEnabled (see the recipe in
the shared recipes, webxr)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .hubbed import LIGHT, PLUG, HubThread

playwright_api = pytest.importorskip("playwright.sync_api")

HERE = Path(__file__).parent
IWER = HERE / "vendor" / "iwer" / "iwer.module.min.js"
ARTIFACTS = Path(os.environ.get("QILU_XR_ARTIFACTS", HERE / "artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


# -- colours the page paints (panels.js) ---------------------------------------------------------------------------
def is_on(rgba: list[int]) -> bool:
    return rgba[1] > 140 and rgba[0] < 80  # #1fb24a


def is_off(rgba: list[int]) -> bool:
    return abs(rgba[0] - 0x4F) < 25 and abs(rgba[1] - 0x55) < 25  # #4f555c


def is_fill(rgba: list[int]) -> bool:
    return rgba[0] > 200 and 110 < rgba[1] < 200 and rgba[2] < 90  # #f0a020


class Page:
    """One page of /xr/ with the emulated Quest 3, and the moves a developer makes with it."""

    def __init__(self, page: Any, hub: HubThread) -> None:
        self.page = page
        self.hub = hub

    def ev(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_for(self, script: str, arg: Any = None, polls: int = 2000) -> Any:
        """Poll a JS function until it returns something truthy. Not page.wait_for_function: that evaluates its
        predicate with eval, which the hub's Content-Security-Policy forbids (as it should)."""
        for _ in range(polls):
            value = self.page.evaluate(script, arg)
            if value:
                return value
            self.page.wait_for_timeout(10)
        raise AssertionError(f"never true: {script} ({arg!r})")

    def open(self, query: str = "") -> None:
        response = self.page.goto(f"{self.hub.url}/xr/?iwer=1{query}")
        # the page runs under the hub's own Content-Security-Policy: no inline script, no other origin
        assert response is not None and "script-src 'self';" in response.headers["content-security-policy"]
        self.wait_for("() => window.appReady === true || window.appError !== undefined")
        assert self.ev("window.appError") is None, self.ev("window.xrStats.errors")
        assert self.ev("isSecureContext")  # loopback counts as secure; a LAN address needs HTTPS (docs/xr.md)

    def enter(self, mode: str = "vr") -> None:
        self.page.click(f"#enter-{mode}")  # a real gesture, as a headset needs
        self.wait_for("() => window.qiluXr.session !== null && window.qiluXr.firstDrawn === true")

    def frames(self) -> int:
        return int(self.ev("window.xrStats.frames"))

    def wait_frames(self, n: int) -> None:
        self.wait_for("(n) => window.xrStats.frames >= n", self.frames() + n)

    def point(self, panel: str, control: int, fu: float = 0.5) -> dict[str, float]:
        return dict(self.ev("([p, c, f]) => window.qiluXr.controlPoint(p, c, f)", [panel, control, fu]))

    def probe(self, name: str, panel: str, control: int, fu: float = 0.95) -> None:
        self.ev("(p) => window.qiluXr.probes.push(p)", {"name": name, "panel": panel, "control": control, "fu": fu})

    def pixel_after(self, name: str, frame: int, check: Any) -> list[int]:
        """The probe's pixel in the first frame after `frame` that passes `check` (bounded wait)."""
        self.wait_for("([n, f]) => (window.xrStats.probes[n] || {frame: -1}).frame > f", [name, frame])
        for _ in range(120):
            probe = self.ev("(n) => window.xrStats.probes[n]", name)
            if check(probe["rgba"]):
                return list(probe["rgba"])
            self.wait_frames(1)
        raise AssertionError(f"probe {name} never passed {check.__name__}: last {probe}")

    def press(self, device: str, target: dict[str, float]) -> None:
        """Aim and press select with IWER's remote interface: press and release as two awaited commands with frames
        between them (a one-shot 'select' can fall inside one slow frame and fire nothing)."""
        self.ev("""async ([d, t]) => {
            const r = window.xrDevice.remote;
            await r.dispatch('look_at', { device: d, target: t });
            await r.dispatch('set_select_value', { device: d, value: 1 });
        }""", [device, target])
        self.wait_frames(2)
        self.ev("(d) => window.xrDevice.remote.dispatch('set_select_value', { device: d, value: 0 })", device)
        self.wait_frames(2)

    def button(self, name: str, hand: str = "right") -> None:
        self.ev("([n, h]) => window.xrDevice.controllers[h].updateButtonValue(n, 1)", [name, hand])
        self.wait_frames(3)
        self.ev("([n, h]) => window.xrDevice.controllers[h].updateButtonValue(n, 0)", [name, hand])
        self.wait_frames(3)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def wait_status(self, status: str) -> None:
        self.wait_for("(s) => window.xrStats.status === s", status)


def wait_until(check: Any, what: str, page: Page, frames: int = 300) -> None:
    for _ in range(frames):
        if check():
            return
        page.wait_frames(1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubThread]:
    ht = HubThread(tmp_path / "config")
    ht.token = ht.start()  # type: ignore[attr-defined]
    yield ht
    ht.stop()


@pytest.fixture
def xr(browser: Any, hub: HubThread) -> Iterator[Page]:
    context = browser.new_context()
    # Signed in as the dashboard is: the token in the HttpOnly cookie, the stream on single-use tickets.
    context.add_cookies([{"name": "qilu_token", "value": hub.token, "url": hub.url}])  # type: ignore[attr-defined]
    context.route("**/xr/emulator/iwer.js",
                  lambda route: route.fulfill(path=str(IWER), content_type="text/javascript"))
    page = context.new_page()
    yield Page(page, hub)
    context.close()


def test_signing_in_on_the_xr_page_comes_back_to_it(browser: Any, hub: HubThread) -> None:
    """A headset that opens /xr/ signed out gets the sign-in form there; once signed in it is back on /xr/ with its
    scene and the WebXR client running, not on the dashboard."""
    context = browser.new_context()
    context.route("**/xr/emulator/iwer.js",
                  lambda route: route.fulfill(path=str(IWER), content_type="text/javascript"))
    try:
        page = context.new_page()
        url = f"{hub.url}/xr/?iwer=1&scene=living_room_vr"
        page.goto(url)
        page.get_by_test_id("login-token").fill(hub.token)  # type: ignore[attr-defined]
        with page.expect_navigation():
            page.get_by_test_id("login-submit").click()
        assert page.url == url
        xr = Page(page, hub)
        xr.wait_for("() => window.appReady === true || window.appError !== undefined")
        assert xr.ev("window.appError") is None, xr.ev("window.xrStats.errors")
        assert page.get_by_test_id("scene").input_value() == "living_room_vr"
        xr.wait_status("online")
    finally:
        context.close()


def light_on(hub: HubThread) -> bool:
    return bool(hub.state(LIGHT).value == "on")


def test_vr_controller_and_hand_pinch_toggle_and_slider_drag(xr: Page) -> None:
    xr.open()
    xr.enter("vr")
    assert xr.ev("[window.xrStats.mode, window.xrStats.blend, window.xrStats.space]") == [
        "immersive-vr", "opaque", "local-floor"]
    xr.probe("ceiling", "lights", 0)
    xr.probe("brightness", "lights", 2, fu=0.5)
    before = light_on(xr.hub)
    frame = xr.frames()
    xr.pixel_after("ceiling", frame, is_on if before else is_off)

    # controller: trigger on the Ceiling toggle
    frame = xr.frames()
    xr.press("controller-right", xr.point("lights", 0))
    wait_until(lambda: light_on(xr.hub) is not before, "the controller toggled the light", xr)
    xr.pixel_after("ceiling", frame, is_off if before else is_on)
    xr.shot("vr_controller_toggle")

    # hand tracking: a pinch on the same toggle switches it back
    xr.ev("window.xrDevice.remote.dispatch('set_input_mode', { mode: 'hand' })")
    xr.wait_frames(3)
    assert xr.ev("[...window.qiluXr.session.inputSources].some((s) => s.hand)"), "no hand input source"
    frame = xr.frames()
    xr.press("hand-right", xr.point("lights", 0))
    wait_until(lambda: light_on(xr.hub) is before, "the pinch toggled the light back", xr)
    xr.pixel_after("ceiling", frame, is_on if before else is_off)
    xr.shot("vr_hand_pinch")
    xr.ev("window.xrDevice.remote.dispatch('set_input_mode', { mode: 'controller' })")
    xr.wait_frames(3)

    # slider: press at 10 %, drag to 90 %, release; the hub ends near 90 % of 255 and the fill covers the centre
    start, end = xr.point("lights", 2, 0.1), xr.point("lights", 2, 0.9)
    xr.ev("""async (t) => {
        const r = window.xrDevice.remote;
        await r.dispatch('look_at', { device: 'controller-right', target: t });
        await r.dispatch('set_select_value', { device: 'controller-right', value: 1 });
    }""", start)
    xr.wait_frames(3)
    for i in range(1, 5):
        target = {k: start[k] + (end[k] - start[k]) * i / 4 for k in start}
        xr.ev("(t) => window.xrDevice.remote.dispatch('look_at', { device: 'controller-right', target: t })", target)
        xr.wait_frames(2)
    xr.ev("window.xrDevice.remote.dispatch('set_select_value', { device: 'controller-right', value: 0 })")
    wait_until(lambda: abs((xr.hub.state(LIGHT).attributes.get("brightness") or 0) - 0.9 * 255) <= 8,
               "the slider drag set the brightness", xr)
    assert xr.ev("window.xrStats.calls") >= 4  # drags send values while moving, not only on release
    frame = xr.frames()
    xr.pixel_after("brightness", frame, is_fill)
    xr.shot("vr_slider")
    assert xr.ev("window.xrStats.errors") == []


def test_ar_passthrough_toggle_and_rest_change(xr: Page) -> None:
    xr.open()
    xr.enter("ar")
    assert xr.ev("[window.xrStats.mode, window.xrStats.blend]") == ["immersive-ar", "alpha-blend"]
    xr.probe("tv", "lights", 1)
    plug_before = xr.hub.state(PLUG).value == "on"
    frame = xr.frames()
    xr.press("controller-right", xr.point("lights", 1))
    wait_until(lambda: (xr.hub.state(PLUG).value == "on") is not plug_before, "the TV plug toggled", xr)
    xr.pixel_after("tv", frame, is_off if plug_before else is_on)
    # a change made elsewhere (REST) reaches the panel; only the panels showing that entity are painted again
    repaints = xr.ev("window.xrStats.repaints")
    frame = xr.frames()
    command = "turn_on" if plug_before else "turn_off"
    req = urllib.request.Request(f"{xr.hub.url}/api/services/switch/{command}", method="POST",
                                 data=json.dumps({"entity_id": PLUG}).encode(),
                                 headers={"Authorization": f"Bearer {xr.hub.token}",  # type: ignore[attr-defined]
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()
    xr.pixel_after("tv", frame, is_on if plug_before else is_off)
    after = xr.ev("window.xrStats.repaints")
    assert after["lights"] > repaints["lights"] and after.get("sofa") == repaints.get("sofa")
    xr.shot("ar_passthrough")


def test_place_a_device_and_move_a_panel_that_stays_across_sessions(xr: Page) -> None:
    xr.open()
    xr.enter("vr")
    # the menu (B), "Place: <the ceiling light>", then select where the light is
    xr.button("b-button")
    assert xr.ev("window.qiluXr.menu !== null")
    devices = xr.ev("window.qiluXr.scene.devices")
    light_device = xr.hub.call(lambda: xr.hub.hub.entities.get(LIGHT).device_id)
    labels = [c["label"] for c in xr.ev("window.qiluXr.menu.def.controls")]
    index = labels.index(f"Place: {devices[light_device]}")
    xr.press("controller-right", xr.point("__menu", index))
    assert xr.ev("window.qiluXr.armed && window.qiluXr.armed.device") == light_device
    spot = {"x": 0.6, "y": 1.1, "z": -0.9}
    xr.ev("(p) => window.xrDevice.controllers.right.position.set(p.x, p.y, p.z)", spot)
    xr.wait_frames(2)
    xr.press("controller-right", {"x": 0.6, "y": 1.1, "z": -2.0})
    wait_until(lambda: xr.hub.call(lambda: xr.hub.hub.devices.get(light_device).pose) is not None,
               "the device's pose reached the hub", xr)
    with urllib.request.urlopen(urllib.request.Request(
            f"{xr.hub.url}/api/xr/poses",
            headers={"Authorization": f"Bearer {xr.hub.token}"}), timeout=10) as r:  # type: ignore[attr-defined]
        pose = json.load(r)["devices"][light_device]
    placed = xr.ev("window.xrStats.placed.at(-1).pose")
    assert [pose[k] for k in "xyz"] == pytest.approx([placed[k] for k in "xyz"], abs=1e-6)
    assert [pose[k] for k in "xyz"] == pytest.approx([spot["x"], spot["y"], spot["z"]], abs=0.15)

    # squeeze the stage panel, carry it 0.4 m to the right, let go
    before = xr.ev("window.qiluXr.panelWorld('lights')")
    centre = xr.point("lights", 0, 1.0)
    xr.ev("""async (t) => {
        await window.xrDevice.remote.dispatch('look_at', { device: 'controller-right', target: t });
    }""", centre)
    xr.wait_frames(2)
    xr.ev("window.xrDevice.controllers.right.updateButtonValue('squeeze', 1)")
    xr.wait_frames(3)
    for _ in range(4):
        xr.ev("window.xrDevice.controllers.right.position.x += 0.1")
        xr.wait_frames(2)
    xr.ev("window.xrDevice.controllers.right.updateButtonValue('squeeze', 0)")
    xr.wait_frames(5)
    moved = xr.ev("window.qiluXr.panelWorld('lights')")
    assert moved["x"] - before["x"] == pytest.approx(0.4, abs=0.05)
    xr.shot("vr_moved_panel")

    # align the home frame: its origin to the floor under the controller; home-frame panels move with it
    xr.button("b-button")
    labels = [c["label"] for c in xr.ev("window.qiluXr.menu.def.controls")]
    xr.press("controller-right", xr.point("__menu", labels.index("Align home here")))
    assert xr.ev("window.qiluXr.armed && window.qiluXr.armed.action") == "align"
    sofa_before = xr.ev("window.qiluXr.panelWorld('sofa')")
    xr.ev("window.xrDevice.controllers.right.position.set(0.5, 1.0, -0.5)")
    xr.wait_frames(2)
    xr.press("controller-right", {"x": 0.5, "y": 1.0, "z": -2.0})  # aimed straight ahead: no turn
    home = xr.ev("window.qiluXr.home")
    assert [home["x"], home["y"], home["z"], home["qy"]] == pytest.approx([0.5, 0.0, -0.5, 0.0], abs=0.1)
    sofa_after = xr.ev("window.qiluXr.panelWorld('sofa')")
    assert sofa_after["z"] - sofa_before["z"] == pytest.approx(home["z"], abs=0.05)
    moved = xr.ev("window.qiluXr.panelWorld('lights')")  # anchored where it was put: the room did not move

    # a new session finds the panel where it was left (a persistent anchor, or the stored pose)
    xr.ev("window.qiluXr.session.end()")
    xr.wait_for("() => window.qiluXr.session === null")
    xr.enter("vr")
    xr.wait_frames(5)
    again = xr.ev("window.qiluXr.panelWorld('lights')")
    assert [again[k] for k in "xyz"] == pytest.approx([moved[k] for k in "xyz"], abs=0.01)
    assert xr.ev("window.xrStats.session") == 2 and xr.ev("window.xrStats.errors") == []
    # IWER offers persistent anchors, as Quest's browser does: the panel came back through one
    assert xr.ev("localStorage.getItem('qilu-xr/anchor/living_room_vr/lights') !== null")
    assert xr.ev("window.qiluXr.entries.get('lights').anchorPose !== null")


def test_reconnects_after_the_hub_restarts(xr: Page, tmp_path: Path) -> None:
    xr.open()
    xr.enter("vr")
    xr.probe("ceiling", "lights", 0)
    port, token = xr.hub.port, xr.hub.token  # type: ignore[attr-defined]
    xr.hub.stop()
    xr.wait_status("offline")
    hub = HubThread(tmp_path / "config", port)  # same directory (token, registry) and port
    hub.start()
    hub.token = token  # type: ignore[attr-defined]
    xr.hub = hub
    try:
        xr.wait_status("online")
        assert xr.ev("window.qiluXr.client.connects") >= 2
        before = light_on(hub)
        frame = xr.frames()
        xr.press("controller-right", xr.point("lights", 0))
        wait_until(lambda: light_on(hub) is not before, "a toggle after the restart", xr)
        xr.pixel_after("ceiling", frame, is_off if before else is_on)
        xr.shot("vr_after_hub_restart")
    finally:
        hub.stop()
