from pathlib import Path

import pytest

from qilu_hub.bus import EventBus
from qilu_hub.model import Pose
from qilu_hub.registry import EVENT_AREA_REGISTRY_UPDATED, AreaRegistry, DeviceRegistry, EntityRegistry
from qilu_hub.storage import RegistryStore


def open_registries(path: Path) -> tuple[RegistryStore, DeviceRegistry, EntityRegistry]:
    store = RegistryStore(path)
    bus = EventBus()
    areas = AreaRegistry(store, bus)
    devices = DeviceRegistry(store, bus)
    return store, devices, EntityRegistry(store, bus, devices, areas)


def test_same_mac_over_two_protocols_is_one_device(tmp_path: Path) -> None:
    store, devices, _ = open_registries(tmp_path / "r.db")
    over_mdns = devices.async_get_or_create(
        source="mdns", name="Air Conditioner", identifiers=[("qoap", "AC-77")],
        connections=[("mac", "A8-03-2A-B1-23-45"), ("ip", "10.0.0.7")], manufacturer="Haier",
    )
    over_ble = devices.async_get_or_create(
        source="ble", name="AC BLE", connections=[("ble", "a8:03:2a:b1:23:45"), ("mac", "a8032ab12345")],
    )
    assert over_ble.id == over_mdns.id and len(devices) == 1
    device = devices.get(over_mdns.id)
    assert device is not None
    assert device.name == "Air Conditioner"  # first reporter names it
    assert device.connections[("mac", "a8:03:2a:b1:23:45")].source == "mdns"
    assert device.connections[("ble", "a8:03:2a:b1:23:45")].source == "ble"
    store.close()


def test_late_link_merges_two_devices_and_moves_entities(tmp_path: Path) -> None:
    store, devices, entities = open_registries(tmp_path / "r.db")
    a = devices.async_get_or_create(source="mdns", name="Washer", identifiers=[("qoap", "WM-1")])
    b = devices.async_get_or_create(source="ble", name="Washer BLE", connections=[("ble", "11:22:33:44:55:66")])
    e = entities.async_get_or_create(unique_id="ble:wm:battery", capabilities=("battery",), name="Battery",
                                     device_id=b.id)
    assert len(devices) == 2
    # A later report carries both identities: the two are one appliance.
    merged = devices.async_get_or_create(
        source="mdns", name="Washer", identifiers=[("qoap", "WM-1")], connections=[("ble", "11:22:33:44:55:66")]
    )
    assert merged.id == a.id and len(devices) == 1
    assert b.id in merged.merged_from
    assert entities.get(e.entity_id).device_id == a.id  # type: ignore[union-attr]
    store.close()
    # The merge is durable.
    store2, devices2, entities2 = open_registries(tmp_path / "r.db")
    assert len(devices2) == 1
    assert entities2.get(e.entity_id).device_id == a.id  # type: ignore[union-attr]
    assert devices2.find(connections=[("ble", "11:22:33:44:55:66")])[0].id == a.id
    store2.close()


def test_entity_ids_are_stable_and_unique(tmp_path: Path) -> None:
    store, devices, entities = open_registries(tmp_path / "r.db")
    d = devices.async_get_or_create(source="x", name="Kitchen Ceiling", identifiers=[("x", "1")])
    one = entities.async_get_or_create(unique_id="x:1:light", capabilities=("on_off", "level"), name="Kitchen Ceiling",
                                       device_id=d.id)
    again = entities.async_get_or_create(unique_id="x:1:light", capabilities=("on_off", "level"), name="Other")
    other = entities.async_get_or_create(unique_id="x:2:light", capabilities=("on_off", "level"),
                                         name="Kitchen Ceiling", device_id=d.id)
    assert one.entity_id == "light.kitchen_ceiling" and again is one
    assert other.entity_id == "light.kitchen_ceiling_2"
    store.close()


def test_ip_address_alone_does_not_merge(tmp_path: Path) -> None:
    store, devices, _ = open_registries(tmp_path / "r.db")
    a = devices.async_get_or_create(source="mdns", name="A", identifiers=[("x", "a")], connections=[("ip", "10.0.0.2")])
    b = devices.async_get_or_create(source="mdns", name="B", identifiers=[("x", "b")], connections=[("ip", "10.0.0.2")])
    assert a.id != b.id
    store.close()


def test_area_pose_update_is_persisted_and_announced(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "registry.db")
    bus = EventBus()
    seen: list[dict[str, object]] = []
    bus.listen(EVENT_AREA_REGISTRY_UPDATED, lambda e: seen.append(e.data))
    areas = AreaRegistry(store, bus)
    area = areas.async_get_or_create("Living room")
    areas.async_update(area.id, pose=Pose(2.0, 0.0, -1.5))
    assert seen[-1] == {"action": "update", "area_id": "living_room"}
    assert AreaRegistry(store, bus).get("living_room").pose == Pose(2.0, 0.0, -1.5)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="cannot be changed"):
        areas.async_update(area.id, id="elsewhere")
