"""Reading a Matter appliance's QR code with the phone's camera, in Debian's Chromium with a fake camera.

Chromium's fake capture device plays a Y4M file made here from a QR code drawn by segno (the code a household
finds on the appliance's label). A real hub (the Matter driver's inbox entry for an appliance announced over
mDNS, the API on a loopback port) serves the dashboard; the test presses Scan beside the entry's setup-code
field as a person would. What it shows: over the hub's own HTTPS (``hub.tls: auto``) at its LAN name, as on a
phone, a Matter code fills the field with the exact payload and the camera stops; the form then sends that
code and the hub takes it for this appliance; a QR code that is not Matter's
is refused with a message while the camera keeps looking; Cancel and leaving the page stop the camera; the
browser's BarcodeDetector is used where it reads QR codes, and jsQR is downloaded only when a scan needs it;
on plain http under a LAN name (not a secure context) the button says why there is no camera.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.api.tls import HubTls
from qilu_hub.appliances.lifecycle import ApplianceLifecycle
from qilu_hub.appliances.setup_codes import SetupCodes
from qilu_hub.config import load_config
from qilu_hub.discovery.parse import mdns_info
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.matter.driver import MatterDriver
from qilu_hub.tls import HubNames, spki_sha256

from .test_dashboard import ARGS, CHROMIUM, open_page, sign_in, until_true

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
JSQR = ROOT / "hub" / "api" / "static" / "vendor" / "jsqr"
# The pairing code matter.js prints for its test appliance with discriminator 912 (vendor 0xFFF1, product 0x8000).
MATTER_QR = "MT:Y.K90AFN00Y00648G00"
KEY = "fff1-8000-912"
LAN_NAME = "qilutest"  # the hub's host name in the HTTPS test; Chromium maps qilutest.local to loopback
OTHER_QR = "WIFI:T:WPA;S:Home;P:not-a-matter-code;;"  # the kind of QR code also found in a home
PHONE = {"width": 390, "height": 844}
# Records each camera stream the page opens, so the test can see whether its track still runs. An init script
# runs before the page's own scripts and outside its Content-Security-Policy.
WATCH_CAMERA = """
window.cameraStreams = [];
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    window.cameraStreams.push({ constraints, stream });
    return stream;
  };
}
"""
TRACKS = "window.cameraStreams.map((s) => s.stream.getVideoTracks().map((track) => track.readyState))"


def qr_video(text: str, path: Path, width: int = 640, height: int = 480, frames: int = 2) -> Path:
    """A short Y4M clip (4:2:0, grey) of a QR code on white: what Chromium's fake camera shows, looped."""
    qr = segno.make_qr(text)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = min(8, height // modules)
    rows = [bytes(0 if dark else 255 for dark in row) for row in qr.matrix_iter(scale=scale, border=4)]
    size = len(rows)
    top, left = (height - size) // 2, (width - size) // 2
    luma = bytearray(b"\xff" * (width * height))
    for y, row in enumerate(rows):
        start = (top + y) * width + left
        luma[start:start + size] = row
    chroma = b"\x80" * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)
    return path


def camera_args(video: Path) -> list[str]:
    return [*ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]


@dataclass
class Bed:
    hub: Hub
    api: ApiServer
    admin: str
    driver: str

    @property
    def url(self) -> str:
        return self.api.url


async def start_bed(config_dir: Path, tls: bool) -> Bed:
    """A hub whose inbox holds one commissionable Matter appliance (heard over mDNS) waiting for its code;
    with ``tls`` it serves HTTPS with its own CA (``hub.tls: auto``), as a household's phone reaches it."""
    if tls:
        (config_dir / "configuration.yaml").write_text("hub:\n  tls: auto\n")
    config = load_config(config_dir)
    config["recorder"]["commit_interval"] = 0.05
    hub = Hub(config_dir, config)
    drivers = DriverManager(builtin=False, entry_points_group=None, drivers=[MatterDriver()])
    hub.add_component(drivers)
    lifecycle = ApplianceLifecycle(drivers, mdns_enabled=False, ble_enabled=False)
    hub.add_component(lifecycle)
    api = ApiServer("127.0.0.1", 0, login_limiter=LoginLimiter(max_failures=1000))
    if tls:
        api.tls = HubTls(config_dir, names=lambda: HubNames(LAN_NAME))
    hub.add_component(api)
    await hub.async_start()
    try:
        info = mdns_info("_matterc._udp.local.", "A._matterc._udp.local.", "a.local.", [], 5540,
                         {b"D": b"912", b"VP": b"65521+32768"})
        assert info is not None
        lifecycle.handle(info, "mdns:A")
        (entry,) = lifecycle.inbox_entries()
        assert entry["key"] == KEY and entry["problem"] == "needs_setup_code"
        _, admin = hub.tokens.create("parent", Scopes(admin=True))
    except BaseException:
        await hub.async_stop()
        raise
    return Bed(hub, api, admin, entry["driver"])


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    """Plain http on loopback (a secure context only as 127.0.0.1; under a LAN name it is not)."""
    started = await start_bed(tmp_path, tls=False)
    yield started
    await started.hub.async_stop()


@pytest.fixture
async def https_bed(tmp_path: Path) -> AsyncIterator[Bed]:
    started = await start_bed(tmp_path, tls=True)
    yield started
    await started.hub.async_stop()


async def phone(browser: Browser, url: str, admin: str, init_scripts: tuple[str, ...] = (WATCH_CAMERA,)
                ) -> tuple[BrowserContext, Page, list[str], list[str]]:
    """A phone-sized page signed in on "Add devices"; the page's errors and the URLs it fetched are recorded."""
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    for script in init_scripts:
        await context.add_init_script(script)
    page = await context.new_page()
    errors: list[str] = []
    fetched: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("request", lambda request: fetched.append(request.url))
    await sign_in(page, url, admin, then="add")
    return context, page, errors, fetched


async def check_phone_layout(page: Page) -> None:
    """With the camera view open: nothing scrolls sideways at phone width, and axe-core (tests/vendor) finds no
    violation of serious or critical impact."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of horizontal overflow"
    violations = await page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                                     ".violations.map(v => ({id: v.id, impact: v.impact}))")
    assert [v for v in violations if v["impact"] in ("serious", "critical")] == []


def jsqr_loads(fetched: list[str]) -> int:
    return sum(url.endswith("/static/vendor/jsqr/jsQR.js") for url in fetched)


async def test_scanning_a_matter_code_fills_the_field_and_the_form_sends_it(https_bed: Bed, tmp_path: Path) -> None:
    """As on a household's phone: the dashboard at the hub's LAN name over its HTTPS, the hub's CA trusted."""
    bed = https_bed
    assert bed.api.tls is not None
    video = qr_video(MATTER_QR, tmp_path / "matter.y4m")
    # No certutil here for an NSS store: the CA is trusted through Chromium's SPKI list (as tests/api/test_tls.py).
    spki = base64.b64encode(spki_sha256(bed.api.tls.files.ca_certificate())).decode()
    args = [*camera_args(video), f"--host-resolver-rules=MAP {LAN_NAME}.local 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={spki}"]
    url = f"https://{LAN_NAME}.local:{bed.api.port}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            # Where the browser's BarcodeDetector reads QR codes (Chrome on Android), it is used and jsQR is not
            # downloaded. Desktop Linux has none, so this page gets a stand-in that reads any playing video.
            detector = """
            window.detections = 0;
            window.BarcodeDetector = class {
              static async getSupportedFormats() { return ["qr_code", "ean_13"]; }
              constructor(options) { this.formats = options.formats; }
              async detect(source) {
                window.detections += 1;
                const playing = source instanceof HTMLVideoElement && source.videoWidth > 0;
                return playing && this.formats.includes("qr_code") ? [{ rawValue: "MATTER_QR" }] : [];
              }
            };
            """.replace("MATTER_QR", MATTER_QR)
            context, page, errors, fetched = await phone(browser, url, bed.admin, (WATCH_CAMERA, detector))
            field = page.get_by_test_id(f"setup-code-{KEY}")
            await page.get_by_test_id(f"scan-{KEY}").click()
            await expect(field).to_have_value(MATTER_QR, timeout=20000)
            assert await page.evaluate("window.detections") >= 1
            assert jsqr_loads(fetched) == 0
            assert await page.evaluate(TRACKS) == [["ended"]]
            assert errors == []
            await context.close()

            # Linux Chromium as it is: no BarcodeDetector, so the vendored jsQR reads the fake camera's frames.
            context, page, errors, fetched = await phone(browser, url, bed.admin)
            assert await page.evaluate("window.isSecureContext") is True  # the HTTPS address lends the camera
            field = page.get_by_test_id(f"setup-code-{KEY}")
            await expect(field).to_have_value("")
            assert jsqr_loads(fetched) == 0  # the dashboard does not download the decoder until a scan
            scan = page.get_by_role("button", name="Scan QR code")
            await expect(scan).to_have_count(1)
            await scan.click()
            # Bounded wait for the camera and the decoder (it asserts nothing about speed).
            await expect(field).to_have_value(MATTER_QR, timeout=20000)
            await expect(page.get_by_test_id(f"scan-status-{KEY}")).to_have_text(re.compile("^Code read"))
            await expect(page.get_by_test_id(f"scan-video-{KEY}")).to_be_hidden()
            # The rear camera was asked for, and its track is stopped now that the code is read.
            asked = await page.evaluate("window.cameraStreams.map((s) => s.constraints.video.facingMode)")
            assert asked == [{"ideal": "environment"}]
            assert await page.evaluate(TRACKS) == [["ended"]]
            assert jsqr_loads(fetched) == 1

            # What the form sends is the scanned payload, and the hub takes it as this appliance's code (nothing
            # commissions here: this hub has no matter-server, tests/matter does that part).
            async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/{KEY}/adopt")) as sent:
                await page.get_by_test_id(f"adopt-{KEY}").click()
            assert (await sent.value).post_data_json["setup_code"] == MATTER_QR
            await (await sent.value).response()
            assert SetupCodes(bed.hub.storage).get(bed.driver, KEY) == MATTER_QR
            assert errors == []
            await context.close()
        finally:
            await browser.close()


async def test_other_qr_codes_are_refused_and_the_camera_stops_when_cancelled(bed: Bed, tmp_path: Path) -> None:
    video = qr_video(OTHER_QR, tmp_path / "wifi.y4m")
    # hub.test resolves to loopback: the same hub under a LAN name on plain http, which is no secure context.
    args = [*camera_args(video), "--host-resolver-rules=MAP hub.test 127.0.0.1"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context, page, errors, _ = await phone(browser, bed.url, bed.admin, (WATCH_CAMERA, AXE.read_text()))
            field = page.get_by_test_id(f"setup-code-{KEY}")
            status = page.get_by_test_id(f"scan-status-{KEY}")
            await expect(status).to_have_attribute("role", "status")  # read out by screen readers
            await page.get_by_test_id(f"scan-{KEY}").click()
            await expect(status).to_have_text(re.compile("not a Matter setup code"), timeout=20000)
            await expect(field).to_have_value("")
            assert await page.evaluate(TRACKS) == [["live"]]  # still looking for the right code
            await expect(page.get_by_test_id(f"scan-cancel-{KEY}")).to_be_focused()
            await check_phone_layout(page)
            await page.get_by_test_id(f"scan-cancel-{KEY}").click()
            await expect(status).to_have_text(re.compile("cancelled"))
            assert await page.evaluate(TRACKS) == [["ended"]]
            await expect(page.get_by_test_id(f"scan-video-{KEY}")).to_be_hidden()
            await expect(page.get_by_test_id(f"scan-{KEY}")).to_be_visible()

            # Leaving the page turns the camera off too.
            await page.get_by_test_id(f"scan-{KEY}").click()
            await expect(page.get_by_test_id(f"scan-video-{KEY}")).to_be_visible()
            await until_true(page, "window.cameraStreams.length === 2")
            await open_page(page, "home")
            await until_true(page, "window.cameraStreams[1].stream.getVideoTracks()[0].readyState === 'ended'")
            assert errors == []
            await context.close()

            # Plain http under a LAN name: no camera for the page, and the button says why instead of failing.
            lan_url = bed.url.replace("127.0.0.1", "hub.test")
            context, page, errors, _ = await phone(browser, lan_url, bed.admin)
            assert await page.evaluate("window.isSecureContext") is False
            scan = page.get_by_test_id(f"scan-{KEY}")
            await expect(scan).to_have_attribute("title", re.compile("HTTPS"))
            await scan.click()
            await expect(page.get_by_test_id(f"scan-status-{KEY}")).to_have_text(re.compile("HTTPS address"))
            await expect(page.get_by_test_id(f"scan-video-{KEY}")).to_be_hidden()
            assert await page.evaluate("window.cameraStreams.length") == 0
            await page.get_by_test_id(f"setup-code-{KEY}").fill(MATTER_QR)  # typing the code still works
            # 中文: the same, in the household's language (the inbox keeps a row someone is typing in: leave it).
            await page.get_by_test_id(f"setup-code-{KEY}").fill("")
            await page.get_by_test_id("lang").focus()
            await page.get_by_test_id("lang").select_option("zh")
            await expect(page.get_by_role("button", name="扫描二维码")).to_be_visible()
            await page.get_by_role("button", name="扫描二维码").click()
            await expect(page.get_by_test_id(f"scan-status-{KEY}")).to_have_text(re.compile("HTTPS 地址"))
            assert errors == []
            await context.close()
        finally:
            await browser.close()


async def test_a_code_typed_into_the_inbox_survives_its_refreshes(bed: Bed) -> None:
    """The inbox rebuilds its rows as appliances come and go (every inbox event, every 30 s). A setup code being
    typed keeps its field's focus through a refresh, and a code typed and left (a tap elsewhere) is still there
    after the next refreshes: before, the first refresh dropped the focus and the second one the code."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context, page, errors, _ = await phone(browser, bed.url, bed.admin, ())
            field = page.get_by_test_id(f"setup-code-{KEY}")
            await field.fill("3497-0112-332")
            await expect(field).to_be_focused()
            for _ in range(2):
                await page.evaluate("loadInbox()")
            await expect(field).to_be_focused()
            await page.get_by_test_id("lang").focus()  # the household looks elsewhere before pressing Add
            for _ in range(2):
                await page.evaluate("loadInbox()")
            await expect(page.get_by_test_id(f"setup-code-{KEY}")).to_have_value("3497-0112-332")
            assert errors == []
            await context.close()
        finally:
            await browser.close()


def test_vendored_jsqr_is_the_pinned_release_with_its_licence() -> None:
    readme = (JSQR / "README.md").read_text()
    (pinned,) = re.findall(r"SHA-256 `([0-9a-f]{64})`", readme)
    assert hashlib.sha256((JSQR / "jsQR.js").read_bytes()).hexdigest() == pinned
    assert "jsqr@1.4.0" in readme and "Apache License" in (JSQR / "LICENSE").read_text()
