import json
from pathlib import Path

import jsonschema

from qilu_hub import Hub
from qilu_hub.td import thing_description
from qilu_hub.virtual import VirtualAppliances

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "td-json-schema-validation.json").read_text())


async def test_every_virtual_device_exports_a_valid_td_1_1(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    await hub.async_start()
    validator = jsonschema.Draft7Validator(SCHEMA)
    try:
        assert hub.devices.all()
        for device in hub.devices.all():
            td = thing_description(device, hub.entities.for_device(device.id))
            errors = sorted(validator.iter_errors(td), key=str)
            assert not errors, errors[0].message
            assert td["@context"][0] == "https://www.w3.org/2022/wot/td/v1.1"
        light = next(d for d in hub.devices.all() if d.model == "Virtual Light")
        td = thing_description(light, hub.entities.for_device(light.id))
        action = td["actions"]["light__living_room_ceiling_light__turn_on"]
        assert action["input"]["properties"]["brightness"] == {"type": "integer", "minimum": 0, "maximum": 255}
    finally:
        await hub.async_stop()


def test_schema_rejects_a_broken_td() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    assert list(validator.iter_errors({"@context": "https://www.w3.org/2022/wot/td/v1.1"}))
