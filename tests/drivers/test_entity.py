from __future__ import annotations

from pathlib import Path

from qilu_hub.core import Hub
from qilu_hub.sdk import DeviceContext, EntityDescription, EntityPublisher, resolve


def test_resolve_paths_and_functions() -> None:
    data = {"switch:0": {"apower": 12.5, "aenergy": {"by_minute": [1, 2, 3]}}}
    assert resolve(data, "switch:0/apower") == 12.5
    assert resolve(data, "switch:0/aenergy/by_minute/2") == 3
    assert resolve(data, "switch:1/apower") is None
    assert resolve(data, "switch:0/aenergy/by_minute/9") is None
    assert resolve(data, lambda d: d["switch:0"]["apower"] * 2) == 25.0


async def test_publisher_registers_publishes_and_marks_unavailable(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    device = hub.devices.async_get_or_create(source="t", name="Plug", identifiers=[("t", "1")])
    descs = [
        EntityDescription("relay", "Relay", ("on_off",), value=lambda d: "on" if d["on"] else "off"),
        EntityDescription("power", "Power", ("power",), value="watts"),
        EntityDescription("cover", "Cover", ("cover_position",), value="cover/state",
                          attributes={"current_position": "cover/pos"}, exists=lambda d: "cover" in d),
    ]
    pub = EntityPublisher(DeviceContext(hub, "t", device.id, "1"), "t:1", descs)
    entities = pub.register({"on": True, "watts": 3.0})
    assert set(entities) == {"relay", "power"}  # no cover in the first data: not created
    pub.publish({"on": True, "watts": 3.0})
    assert hub.states.get(entities["relay"].entity_id).value == "on"  # type: ignore[union-attr]
    assert hub.states.get(entities["power"].entity_id).value == 3.0  # type: ignore[union-attr]
    pub.publish({"on": False})  # power missing: left alone
    assert hub.states.get(entities["relay"].entity_id).value == "off"  # type: ignore[union-attr]
    assert hub.states.get(entities["power"].entity_id).value == 3.0  # type: ignore[union-attr]
    # Same unique ids on a second registration: same entities (a restart keeps entity ids).
    again = EntityPublisher(DeviceContext(hub, "t", device.id, "1"), "t:1", descs).register({"on": True, "watts": 1})
    assert again["relay"].entity_id == entities["relay"].entity_id
    pub.set_unavailable()
    assert all(hub.states.get(e.entity_id).value == "unavailable" for e in entities.values())  # type: ignore[union-attr]
    assert pub.key_of(entities["power"].entity_id) == "power"
    hub.storage.close()
