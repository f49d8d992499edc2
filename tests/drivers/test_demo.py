"""The demo component: every kind of simulated appliance is discovered, adopted and controllable."""

from __future__ import annotations

from pathlib import Path

from drivers.demo import DemoAppliances
from drivers.manager import DriverManager
from hub.core import Hub
from hub.sdk.testing import wait_for


async def test_demo_adopts_every_kind(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    manager = DriverManager(entry_points_group=None, retry_initial=0.1)
    hub.add_component(manager)
    hub.add_component(DemoAppliances(ble_interval=0.2))
    await hub.async_start()
    try:
        expected = {"qoap": 3, "shelly": 2, "wled": 1, "bthome": 2, "xiaomi": 1}

        def counts() -> dict[str, int]:
            out: dict[str, int] = {}
            for rec in manager.status():
                if rec["state"] == "running":
                    out[rec["driver"]] = out.get(rec["driver"], 0) + 1
            return out

        await wait_for(lambda: counts() == expected, timeout=30, what=f"{expected} running")
        by_domain: dict[str, list[str]] = {}
        for entity in hub.entities.all():
            by_domain.setdefault(entity.domain, []).append(entity.entity_id)
        assert {"switch", "light", "cover", "climate", "fan", "sensor", "binary_sensor"} <= set(by_domain)
        light = by_domain["light"][0]
        await hub.commands.async_call(light, "turn_on", {"brightness": 90})
        await wait_for(lambda: getattr(hub.states.get(light), "value", None) == "on", what="WLED on")
        climate = by_domain["climate"][0]
        await hub.commands.async_call(climate, "set_hvac_mode", {"hvac_mode": "cool"})
        assert getattr(hub.states.get(climate), "value", None) == "cool"

        def xiaomi_temperature() -> object:
            for e in hub.entities.all():
                if e.unique_id.startswith("xiaomi:") and e.capabilities == ("temperature",):
                    return getattr(hub.states.get(e.entity_id), "value", None)
            return None

        await wait_for(lambda: isinstance(xiaomi_temperature(), float), what="Xiaomi temperature")
    finally:
        await hub.async_stop()


async def test_stopping_the_demo_does_not_read_as_appliances_going_offline(tmp_path: Path) -> None:
    """build_hub(demo=True) stops the simulators after the drivers and discovery: shutting down must not set
    every appliance "unavailable" (recorded in history, logged as an outage)."""
    from hub.setup import build_hub

    hub = build_hub(tmp_path, {"hub": {"port": 0}, "recorder": {"enabled": False}}, demo=True)
    manager = hub.components["drivers"]
    assert isinstance(manager, DriverManager)
    await hub.async_start()
    went_unavailable: list[str] = []
    try:
        await wait_for(lambda: sum(rec["state"] == "running" for rec in manager.status()) >= 3, timeout=30,
                       what="three demo appliances adopted over loopback mDNS")
        adopted = {e.entity_id for rec in manager.status() for e in hub.entities.for_device(rec["device_id"])}
        hub.bus.listen(
            "state_changed",
            lambda event: went_unavailable.append(event.data["entity_id"])
            if event.data["entity_id"] in adopted and getattr(event.data.get("new_state"), "value", None)
            == "unavailable" else None,
        )
    finally:
        await hub.async_stop()
    assert adopted and went_unavailable == []
