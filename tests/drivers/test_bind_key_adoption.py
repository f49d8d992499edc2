"""Encrypted BLE sensors end to end: discovery -> inbox (needs a bind key) -> adoption with the key through the
REST API, the discovery component or the CLI -> readings through the real bthome-ble / xiaomi-ble parsers.

A real hub (driver manager, discovery, API on a loopback port); adverts come from the simulators, handed to
discovery as its BLE source hands them (the BLE radio path through bleak is in test_ble_mock.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.appliances import ApplianceLifecycle
from qilu_hub.appliances.bind_keys import BindKeyRequired
from qilu_hub.cli import main
from qilu_hub.config import load_config
from qilu_hub.drivers.bthome.simulator import BTHomeSimulator
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.drivers.xiaomi.simulator import XiaomiSimulator
from qilu_hub.sdk._passive_ble import WRONG_KEY_AFTER
from qilu_hub.sdk.testing import wait_for
from qilu_hub.td import thing_description

KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
WRONG = bytes.fromhex("00112233445566778899aabbccddeeff")
Sim = BTHomeSimulator | XiaomiSimulator


class Running:
    """One hub on a config directory; ``start`` again after ``stop`` is a restart."""

    def __init__(self, config_dir: Path, auto_adopt: dict[str, bool] | None = None) -> None:
        self.config_dir = config_dir
        self.auto_adopt = auto_adopt or {}
        self.hub: Hub | None = None

    async def start(self) -> Running:
        config = load_config(self.config_dir)
        config["discovery"]["auto_adopt"] = self.auto_adopt
        self.hub = Hub(self.config_dir, config, recorder=False)
        self.drivers = DriverManager(entry_points_group=None, retry_initial=0.1, retry_max=0.5)
        self.discovery = ApplianceLifecycle("drivers", mdns_enabled=False, ble_enabled=False)
        self.api = ApiServer("127.0.0.1", 0)
        for component in (self.drivers, self.discovery, self.api):
            self.hub.add_component(component)
        await self.hub.async_start()
        _, self.admin = self.hub.tokens.create("admin", Scopes(admin=True))
        return self

    async def stop(self) -> None:
        if self.hub is not None:
            await self.hub.async_stop()
            self.hub = None

    async def feed(self, sim: Sim, count: int = 1) -> None:
        for _ in range(count):
            sim.step()
            self.discovery.handle(sim.advert(), f"ble:{sim.address}")
            await self.discovery.async_wait_for_loads()  # a first advert waits for its driver's import

    async def wait_running(self, sim: Sim) -> None:
        await wait_for(lambda: any(r.appliance.key == sim.address and r.state == "running"
                                   for r in self.drivers.adopted.values()), what="the connection running")

    def entry(self, sim: Sim) -> dict[str, Any]:
        [entry] = [e for e in self.discovery.inbox_entries() if e["key"] == sim.address]
        return entry

    def temperature(self, sim: Sim) -> Any:
        assert self.hub is not None
        for entity in self.hub.entities.all():
            if entity.capabilities == ("temperature",) and sim.address in entity.unique_id:
                state = self.hub.states.get(entity.entity_id)
                return state.value if state is not None else None
        return None

    async def readings(self, sim: Sim) -> float:
        """Feed adverts until the temperature entity shows the simulator's value."""
        expected = sim.values["temperature"] if isinstance(sim, BTHomeSimulator) else sim.temperature
        for _ in range(200):
            await self.feed(sim)
            value = self.temperature(sim)
            if isinstance(value, float) and abs(value - float(expected)) < 0.5:
                return value
            await asyncio.sleep(0.01)
        raise AssertionError(f"no readings from {sim.address}")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    run = await Running(tmp_path / "config").start()
    yield run
    await run.stop()


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_key(text: str, *keys: bytes) -> None:
    for key in keys:
        assert key.hex() not in text.lower(), "a bind key leaked"


async def test_bthome_waits_flagged_then_adopts_with_its_key_over_rest(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim = BTHomeSimulator("climate", 21, bind_key=KEY)
    await running.feed(sim, 3)
    entry = running.entry(sim)
    assert entry["state"] == "pending" and entry["problem"] == "needs_bind_key" and not entry["bind_key_set"]
    assert running.drivers.status() == []  # not adopted into a sensor that could never report
    url = f"{running.api.url}/api/discovery/{sim.address}/adopt"
    async with aiohttp.ClientSession(headers=headers(running.admin)) as http:
        async with http.post(url) as resp:
            assert resp.status == 400 and "bind key" in (await resp.json())["message"]
        bad = KEY.hex()[:-1] + "x"
        async with http.post(url, json={"bind_key": bad}) as resp:
            body = await resp.text()
            assert resp.status == 400 and "32 hex digits" in body and bad not in body
        async with http.post(url, json={"bind_key": 1234}) as resp:
            assert resp.status == 400
        assert running.drivers.status() == [] and running.entry(sim)["state"] == "pending"
        async with http.post(url, json={"bind_key": KEY.hex().upper()}) as resp:
            assert resp.status == 200
            answers = [await resp.text()]
        await running.readings(sim)
        entry = running.entry(sim)
        assert entry["state"] == "adopted" and entry["problem"] is None and entry["bind_key_set"]
        for path in ("/api/discovery", "/api/dashboard/registry", "/api/states"):
            async with http.get(running.api.url + path) as resp:
                assert resp.status == 200
                answers.append(await resp.text())
    assert running.hub is not None
    device = running.hub.devices.get(entry["device_id"])
    assert device is not None
    answers.append(json.dumps(thing_description(device, running.hub.entities.for_device(device.id))))
    answers.append(repr(running.drivers.adopted) + repr(running.discovery.inbox_entries()) + repr(device))
    for text in answers:
        assert_no_key(text, KEY)
    assert_no_key(caplog.text, KEY)


async def test_restart_keeps_the_key(tmp_path: Path) -> None:
    run = await Running(tmp_path / "config").start()
    sim = XiaomiSimulator(22, bind_key=KEY)
    try:
        await run.feed(sim)
        assert run.entry(sim)["problem"] == "needs_bind_key"
        with pytest.raises(BindKeyRequired):
            await run.discovery.async_adopt(sim.address)
        await run.discovery.async_adopt(sim.address, bind_key=KEY.hex())
        await run.readings(sim)
        await run.stop()
        await run.start()  # same registry: the key comes back with the adoption, nobody types it again
        await run.readings(sim)
        assert run.entry(sim)["bind_key_set"] and run.entry(sim)["problem"] is None
        assert run.hub is not None
        # Only the bind_key records hold it: the adoption and inbox records are listed by the API and the CLI.
        for kind in ("adopted", "inbox", "device", "entity"):
            assert_no_key(json.dumps(run.hub.storage.load(kind)), KEY)
        assert KEY.hex() in json.dumps(run.hub.storage.load("bind_key"))
    finally:
        await run.stop()


@pytest.mark.parametrize("make", [lambda key: BTHomeSimulator("climate", 23, bind_key=key),
                                  lambda key: XiaomiSimulator(23, bind_key=key)], ids=["bthome", "xiaomi"])
async def test_wrong_key_says_so_once_and_the_right_key_fixes_it(
        running: Running, caplog: pytest.LogCaptureFixture, make: Any) -> None:
    sim = make(KEY)
    await running.feed(sim)
    caplog.set_level(logging.DEBUG)
    await running.discovery.async_adopt(sim.address, bind_key=WRONG.hex())
    await running.wait_running(sim)
    await running.feed(sim, 40)
    entry = running.entry(sim)
    assert entry["state"] == "adopted" and entry["problem"] == "wrong_bind_key"
    [status] = running.drivers.status()
    assert status["problem"] == "wrong_bind_key" and status["state"] == "running"
    assert running.temperature(sim) is None  # nothing made up from undecryptable adverts
    ours = [r for r in caplog.records if "bind key does not decrypt" in r.getMessage()]
    assert len(ours) == 1 and ours[0].levelno == logging.WARNING  # once, not per advert
    # The parser libraries warn on each failed decryption; with a wrong key they only see a probe now and then.
    library = [r for r in caplog.records if r.name.startswith(("bthome_ble", "xiaomi_ble"))
               and r.levelno >= logging.WARNING]
    assert len(library) <= WRONG_KEY_AFTER
    await running.discovery.async_adopt(sim.address, bind_key=KEY.hex())  # the household fixes it
    await running.readings(sim)
    assert running.entry(sim)["problem"] is None
    assert_no_key(caplog.text, KEY, WRONG)


async def test_auto_adopt_skips_encrypted_sensors_until_keyed(tmp_path: Path) -> None:
    run = await Running(tmp_path / "config", auto_adopt={"bthome": True}).start()
    try:
        plain, secret = BTHomeSimulator("climate", 24), BTHomeSimulator("motion", 24, bind_key=KEY)
        for _ in range(20):
            await run.feed(plain)
            await run.feed(secret)
        await wait_for(lambda: len(run.drivers.status()) == 1, what="the plain sensor auto-adopted")
        assert run.entry(plain)["state"] == "adopted"
        assert run.entry(secret)["state"] == "pending" and run.entry(secret)["problem"] == "needs_bind_key"
        assert run.discovery.adopt_failures == 0  # waiting for a key is not a failure retried in a loop
    finally:
        await run.stop()


async def test_ignoring_forgets_the_key(running: Running) -> None:
    sim = BTHomeSimulator("climate", 25, bind_key=KEY)
    await running.feed(sim)
    await running.discovery.async_adopt(sim.address, bind_key=KEY.hex())
    await running.readings(sim)
    await running.discovery.async_ignore(sim.address)
    assert running.drivers.status() == []
    await running.discovery.async_unignore(sim.address)
    assert running.entry(sim)["problem"] == "needs_bind_key"
    assert running.hub is not None and running.hub.storage.load("bind_key") == {}


async def test_plaintext_adverts_from_a_keyed_sensor_are_dropped(running: Running) -> None:
    sim = BTHomeSimulator("climate", 26, bind_key=KEY)
    await running.feed(sim)
    await running.discovery.async_adopt(sim.address, bind_key=KEY.hex())
    real = await running.readings(sim)
    await running.wait_running(sim)
    spoof = BTHomeSimulator("climate", 26)  # same address, no encryption: what anyone nearby could send
    spoof.values["temperature"] = 99.0
    await running.feed(spoof, 5)
    assert running.temperature(sim) == real
    [rec] = running.drivers.adopted.values()
    assert getattr(rec.connection, "plaintext_dropped", 0) == 5


async def test_cli_adopt_with_bind_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    run = await Running(tmp_path / "config").start()
    one, two = XiaomiSimulator(27, bind_key=KEY), BTHomeSimulator("climate", 27, bind_key=KEY)
    await run.feed(one)
    await run.feed(two)
    await run.stop()
    config = str(tmp_path / "config")
    assert main(["--config", config, "inbox", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("needs a bind key") == 2
    assert main(["--config", config, "inbox", "adopt", one.address]) == 1
    assert "--bind-key" in capsys.readouterr().err
    assert main(["--config", config, "inbox", "adopt", one.address, "--bind-key", "abc"]) == 2
    err = capsys.readouterr().err
    assert "32 hex digits" in err and "abc" not in err
    assert main(["--config", config, "inbox", "adopt", one.address, "--bind-key", KEY.hex()]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY.hex() + "\n"))  # '-': from stdin, not the command line
    assert main(["--config", config, "inbox", "adopt", two.address, "--bind-key", "-"]) == 0
    assert main(["--config", config, "inbox", "list"]) == 0
    out = capsys.readouterr().out
    assert "needs a bind key" not in out
    assert_no_key(out, KEY)
    caplog.set_level(logging.DEBUG)
    await run.start()  # the hub carries out both adoptions when it sees the sensors
    try:
        await run.readings(one)
        await run.readings(two)
    finally:
        await run.stop()
    assert_no_key(caplog.text, KEY)


async def test_dashboard_adopts_with_a_typed_key(running: Running) -> None:
    """Real Chromium (Debian's, driven by Playwright): the inbox row asks for the key; a bad one is refused."""
    import shutil

    from playwright.async_api import async_playwright, expect

    from tests.api.test_dashboard import sign_in

    sim = XiaomiSimulator(28, bind_key=KEY)
    await running.feed(sim)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await sign_in(page, running.api.url, running.admin, then="add")
            row = page.locator(f'[data-inbox="{sim.address}"]')
            field = page.get_by_test_id(f"bind-key-{sim.address}")
            await expect(field).to_have_attribute("type", "password")
            await field.fill("not a key")
            await row.get_by_role("button", name="Add", exact=True).click()
            await expect(page.locator("#toast")).to_contain_text("32 hex digits")
            assert running.drivers.status() == []
            await page.get_by_test_id(f"bind-key-{sim.address}").fill(KEY.hex())
            await page.locator(f'[data-inbox="{sim.address}"]').get_by_role("button", name="Add", exact=True).click()
            await expect(page.locator(f'[data-inbox="{sim.address}"]')).to_have_count(0)
            await running.readings(sim)
            assert_no_key(await page.content(), KEY)
            assert errors == []
        finally:
            await browser.close()
