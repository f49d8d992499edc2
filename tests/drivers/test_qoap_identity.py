"""QOAP 1.1 identity (docs/appliance-profile.md §8): the key pinned at adoption, and the proof that lets a
moved appliance be followed without asking, over real HTTP on loopback with the real driver manager."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from qilu_hub.core import Hub
from qilu_hub.discovery.models import MdnsInfo
from qilu_hub.drivers.manager import STORAGE_KIND, DriverManager
from qilu_hub.drivers.qoap import profile
from qilu_hub.drivers.qoap.driver import IDENTITY_KEY, QoapDriver
from qilu_hub.drivers.qoap.identity import IdentityError, async_challenge
from qilu_hub.drivers.qoap.simulator import QoapSimulator
from qilu_hub.sdk import DiscoveredAppliance
from qilu_hub.sdk.testing import HttpServer, wait_for


def advert(sim: QoapSimulator, port: int | None = None) -> MdnsInfo:
    """The advert the appliance (or someone claiming to be it) sends, as discovery hands it over."""
    return MdnsInfo(profile.MDNS_TYPE, f"{sim.instance}.{profile.MDNS_TYPE}", f"{sim.instance}.local.",
                    (sim.host,), port or sim.port, sim.txt())


def claim(sim: QoapSimulator, port: int | None = None) -> DiscoveredAppliance:
    appliance = QoapDriver().identify(advert(sim, port))
    assert appliance is not None
    return appliance


async def adopted(hub: Hub, manager: DriverManager, sim: QoapSimulator) -> str:
    await manager.async_adopt("qoap", claim(sim))
    rec = manager.get(sim.device_id)
    assert rec is not None
    await wait_for(lambda: rec.state == "running", what="connection running")
    return rec.key


async def test_adoption_pins_the_appliance_key(hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    hub, manager = hub_with_drivers
    sim = QoapSimulator("fridge", seed="pin")
    await sim.start()
    try:
        key = await adopted(hub, manager, sim)
        stored = (hub.storage.get(STORAGE_KIND, key) or {})["appliance"]["data"]
        assert stored[IDENTITY_KEY] == sim.public_key() and stored["host"] == sim.host
    finally:
        await sim.stop()


async def test_moved_appliance_with_its_key_is_proved_and_another_key_is_not(
        hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    hub, manager = hub_with_drivers
    real = QoapSimulator("fridge", seed="home")
    await real.start()
    moved = QoapSimulator("fridge", device_id=real.device_id, seed="home")  # the same appliance, new port
    impostor = QoapSimulator("fridge", device_id=real.device_id, instance="Fridge (2)")  # same id, own key
    await moved.start()
    await impostor.start()
    try:
        key = await adopted(hub, manager, real)
        ok, why = await manager.async_prove_move(key, claim(moved))
        assert ok, why
        ok, why = await manager.async_prove_move(key, claim(impostor))
        assert not ok and "another key" in why
        ok, why = await manager.async_prove_move(key, claim(real, port=1))  # nobody there
        assert not ok
        # Nothing was switched by asking: the adoption still points at the real appliance.
        rec = manager.get(key)
        assert rec is not None and rec.appliance.data["port"] == real.port and rec.state == "running"
    finally:
        for sim in (real, moved, impostor):
            await sim.stop()


async def test_a_relayed_proof_does_not_verify(hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    """An impostor that forwards the hub's challenge to the real appliance gets a signature bound to the real
    appliance's address, which does not verify for the impostor's."""
    hub, manager = hub_with_drivers
    real = QoapSimulator("fridge", seed="relay")
    await real.start()

    async def relay(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session, session.post(
                f"http://{real.host}:{real.port}{profile.IDENTITY_PATH}", data=await request.read(),
                headers={"Content-Type": "application/json"}) as resp:
            return web.Response(body=await resp.read(), status=resp.status, content_type="application/json")

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post(profile.IDENTITY_PATH, relay)
        return app

    relay_server = HttpServer(make_app, "127.0.0.1", 0)
    await relay_server.start()
    try:
        key = await adopted(hub, manager, real)
        ok, why = await manager.async_prove_move(key, claim(real, port=relay_server.port))
        assert not ok and "does not verify" in why
    finally:
        await relay_server.stop()
        await real.stop()


async def test_profile_1_0_appliance_works_and_its_moves_need_confirmation(
        hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    hub, manager = hub_with_drivers
    old = QoapSimulator("fridge", variant="profile_1_0")
    await old.start()
    try:
        key = await adopted(hub, manager, old)
        rec = manager.get(key)
        assert rec is not None and IDENTITY_KEY not in rec.appliance.data
        ok, why = await manager.async_prove_move(key, claim(old))
        assert not ok and "confirm" in why
    finally:
        await old.stop()


async def test_another_key_at_the_adopted_address_is_refused(hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    hub, manager = hub_with_drivers
    real = QoapSimulator("fridge", seed="one")
    await real.start()
    port = real.port
    key = await adopted(hub, manager, real)
    await real.stop()
    # Someone else takes the address (the port here) and answers with the same id but their own key.
    taker = QoapSimulator("fridge", port=port, device_id=real.device_id)
    await taker.start()
    try:
        rec = manager.get(key)
        assert rec is not None
        await wait_for(lambda: rec.last_error is not None and "identity check" in rec.last_error,
                       what="the identity check refusing the new holder of the address")
        assert rec.state != "running"
    finally:
        await taker.stop()


async def test_challenge_checks_signature_and_key(hub_with_drivers: tuple[Hub, DriverManager]) -> None:
    sim = QoapSimulator("washing_machine", variant="unbound_identity")
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(IdentityError, match="does not verify"):
                await async_challenge(session, sim.host, sim.port, sim.device_id)
            async with session.post(f"http://{sim.host}:{sim.port}{profile.IDENTITY_PATH}",
                                    json={"challenge": "not base64!"}) as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_format"
    finally:
        await sim.stop()
