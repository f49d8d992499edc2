"""One availability rule for every source (docs/architecture.md, "Availability"): ``unavailable`` keeps the
attributes; the last good state comes back when the appliance does, unless its driver writes one first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt

from qilu_hub.appliances.availability import availability
from qilu_hub.context import Context
from qilu_hub.core import Hub
from qilu_hub.discovery.models import DiscoveryInfo, MdnsInfo, MdnsMatcher
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.model import Entity
from qilu_hub.sdk import (
    DeviceConnection,
    DeviceContext,
    DiscoveredAppliance,
    Driver,
    EntityDescription,
    EntityPublisher,
    Manifest,
)
from qilu_hub.sdk.testing import wait_for
from qilu_hub.states import EVENT_STATE_CHANGED, UNAVAILABLE, UNKNOWN, State
from tests.mqtt.conftest import broker, settings_for, st, start_hub  # noqa: F401  (broker: a fixture)
from tests.testbeds.mosquitto import Mosquitto


def own(hub: Hub, state: State) -> dict[str, Any]:
    """The attributes the appliance reported, without what the hub adds for Home Assistant's clients."""
    return hub.presentation.own_attributes(state.entity_id, state.attributes)

LIGHT = (EntityDescription("light", "Lamp", ("on_off", "level"), value="on",
                           attributes={"brightness": "brightness"}),)


class QuietConnection(DeviceConnection):
    """Publishes at its first start only, as an appliance that reports on change and not on connect."""

    def __init__(self, driver: QuietDriver, context: DeviceContext, appliance: DiscoveredAppliance) -> None:
        self.driver = driver
        self.publisher = EntityPublisher(context, f"quiet:{appliance.key}", LIGHT)

    async def async_start(self) -> None:
        self.driver.starts += 1
        self.publisher.register()
        if self.driver.starts == 1 or self.driver.talkative:
            self.publisher.publish({"on": "on" if self.driver.starts == 1 else "off", "brightness": 200})
        self.driver.live = self

    async def async_stop(self) -> None:
        self.driver.live = None

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        raise NotImplementedError


class QuietDriver(Driver):
    manifest = Manifest(name="quiet", version="1.0", title="Quiet", mdns=(MdnsMatcher("_quiet._tcp.local."),))

    def __init__(self, talkative: bool = False) -> None:
        self.starts = 0
        self.talkative = talkative
        self.live: QuietConnection | None = None

    def identify(self, info: DiscoveryInfo) -> DiscoveredAppliance | None:
        return None

    def connect(self, context: DeviceContext, appliance: DiscoveredAppliance) -> DeviceConnection:
        return QuietConnection(self, context, appliance)


async def _lamp(tmp_path: Path, driver: QuietDriver) -> tuple[Hub, str]:
    hub = Hub(tmp_path, {}, recorder=False)
    manager = DriverManager([driver], builtin=False, entry_points_group=None, retry_initial=0.01, retry_max=0.05)
    hub.add_component(manager)
    await hub.async_start()
    await manager.async_adopt("quiet", DiscoveredAppliance(key="q1", title="Lamp", identifiers=(("quiet", "q1"),)))
    await wait_for(lambda: driver.live is not None, what="connected")
    [entity] = hub.entities.for_device(manager.adopted["quiet:q1"].device_id)
    return hub, entity.entity_id


async def test_a_lost_connection_keeps_attributes_and_restores_the_last_state(tmp_path: Path) -> None:
    driver = QuietDriver()
    hub, lamp = await _lamp(tmp_path, driver)
    try:
        seen: list[tuple[Any, dict[str, Any]]] = []
        hub.bus.listen(EVENT_STATE_CHANGED, lambda e: seen.append((e.data["new_state"].value,  # type: ignore[arg-type]
                                                               own(hub, e.data["new_state"]))))
        assert driver.live is not None
        driver.live.report_lost("link dropped")
        await wait_for(lambda: driver.starts == 2 and driver.live is not None, what="reconnected")
        # Unavailable with its attributes, then, the driver writing nothing at start, its last good state.
        assert (UNAVAILABLE, {"brightness": 200}) in seen
        state = st(hub, lamp)
        assert (state.value, own(hub, state)) == ("on", {"brightness": 200})
        assert state.attributes["color_mode"] == "brightness"  # the presentation follows the restored state
    finally:
        await hub.async_stop()


async def test_what_the_driver_writes_on_return_wins_over_the_remembered_state(tmp_path: Path) -> None:
    driver = QuietDriver(talkative=True)
    hub, lamp = await _lamp(tmp_path, driver)
    try:
        assert driver.live is not None
        driver.live.report_lost("link dropped")
        await wait_for(lambda: driver.starts == 2 and driver.live is not None, what="reconnected")
        assert st(hub, lamp).value == "off"  # fresh from the appliance, not the remembered "on"
    finally:
        await hub.async_stop()


async def test_an_entity_that_never_had_a_value_is_unknown_once_its_appliance_is_back(tmp_path: Path) -> None:
    """Reachable with no value yet (an appliance that has not reported, or reported only what the hub refused) is
    ``unknown``, as Home Assistant shows it, not ``unavailable`` forever."""
    hub = Hub(tmp_path, {}, recorder=False)
    await hub.async_start()
    try:
        rule, context = availability(hub), Context()
        rule.mark_unavailable(["light.never_reported"], context)
        assert st(hub, "light.never_reported").value == UNAVAILABLE
        rule.mark_available(["light.never_reported"], context)
        assert st(hub, "light.never_reported").value == UNKNOWN
        hub.states.async_set("light.never_reported", "on", {}, context)
        rule.mark_unavailable(["light.never_reported"], context)
        rule.mark_available(["light.never_reported"], context)
        assert st(hub, "light.never_reported").value == "on"  # a value it had comes back, not "unknown"
    finally:
        await hub.async_stop()


async def test_a_silent_publisher_keeps_attributes(tmp_path: Path) -> None:
    """Passive sensors (EntityPublisher.set_unavailable) follow the same rule."""
    hub = Hub(tmp_path, {}, recorder=False)
    device = hub.devices.async_get_or_create(source="t", name="T", identifiers=[("t", "1")])
    pub = EntityPublisher(DeviceContext(hub, "t", device.id, "1"), "t:1", LIGHT)
    [entity] = pub.register().values()
    pub.publish({"on": "on", "brightness": 12})
    pub.set_unavailable()
    state = st(hub, entity.entity_id)
    assert (state.value, own(hub, state)) == (UNAVAILABLE, {"brightness": 12})
    assert state.attributes["friendly_name"] == "T Lamp"  # what the entity is stays shown while it is gone
    pub.publish({"on": "off", "brightness": 3})
    assert st(hub, entity.entity_id).value == "off"
    hub.storage.close()


async def test_sightings_gone_keep_attributes_and_restore(tmp_path: Path) -> None:
    """Discovery: an adopted appliance whose every sighting is gone, and that is heard again."""
    from qilu_hub.appliances import ApplianceLifecycle, StaticCatalog
    from tests.discovery.qd_driver import QD_TYPE, QdDriver

    qd = QdDriver()
    lifecycle = ApplianceLifecycle(lambda h: StaticCatalog(h, [qd]), mdns_enabled=False, ble_enabled=False)
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(lifecycle)
    await hub.async_start()
    try:
        info = MdnsInfo(QD_TYPE, "qd-1." + QD_TYPE, "qd.local.", ("10.0.0.5",), 80, {"mac": "aa:bb:cc:dd:ee:01"})
        lifecycle.handle(info, "mdns:qd-1")
        await wait_for(lambda: len(qd.connections) == 1 and all(k in lifecycle._live for k in qd.connections))
        [conn] = qd.connections.values()
        assert conn.entity_id is not None
        hub.states.async_set(conn.entity_id, "on", {"brightness": 7})
        lifecycle.sighting_gone("mdns:qd-1")
        assert (st(hub, conn.entity_id).value, own(hub, st(hub, conn.entity_id))) == (UNAVAILABLE, {"brightness": 7})
        lifecycle.handle(info, "mdns:qd-1")
        assert (st(hub, conn.entity_id).value, own(hub, st(hub, conn.entity_id))) == ("on", {"brightness": 7})
    finally:
        await hub.async_stop()


async def test_mqtt_import_offline_keeps_attributes(broker: Mosquitto, tmp_path: Path) -> None:  # noqa: F811
    """MQTT import: an availability topic saying offline, then online again."""
    hub, _bridge = await start_hub(tmp_path / "hub", settings_for(broker, "hub_a"))
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            config = {"name": "Desk", "unique_id": "desk1", "command_topic": "desk/set", "state_topic": "desk/state",
                      "availability_topic": "desk/avail", "brightness_state_topic": "desk/bri",
                      "brightness_command_topic": "desk/bri/set", "device": {"identifiers": ["desk1"], "name": "Desk"}}
            await client.publish("homeassistant/light/desk1/config", json.dumps(config), retain=True)
            await client.publish("desk/avail", "online", retain=True)
            await client.publish("desk/state", "ON", retain=True)
            await client.publish("desk/bri", "128", retain=True)
            await wait_for(lambda: (s := hub.states.get("light.desk")) is not None and s.value == "on"
                           and "brightness" in s.attributes, what="imported light")
            attributes = dict(st(hub, "light.desk").attributes)
            await client.publish("desk/avail", "offline", retain=True)
            await wait_for(lambda: st(hub, "light.desk").value == UNAVAILABLE, what="offline")
            assert dict(st(hub, "light.desk").attributes) == attributes
            await client.publish("desk/avail", "online", retain=True)
            await wait_for(lambda: st(hub, "light.desk").value == "on", what="back")
            assert dict(st(hub, "light.desk").attributes) == attributes
    finally:
        await hub.async_stop()
