"""What Home Assistant shows for an entity, in every state written: names, units, classes, per-domain attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qilu_hub.context import Context
from qilu_hub.core import Hub
from qilu_hub.model import Device, Entity
from qilu_hub.presentation import describe, entity_name, friendly_name, light_color_modes
from qilu_hub.states import EVENT_STATE_CHANGED, UNAVAILABLE


@pytest.fixture
def hub(tmp_path: Path) -> Any:
    hub = Hub(tmp_path, {}, recorder=False)
    yield hub
    hub.storage.close()


def _fridge(hub: Hub) -> Device:
    return hub.devices.async_get_or_create(source="t", name="Fridge", identifiers=[("t", "fridge")],
                                           manufacturer="Qilu", model="QRF-520")


def test_names_follow_has_entity_name() -> None:
    fridge = Device("d1", "Fridge")
    power = Entity("sensor.fridge_power", "u1", "d1", ("power",), "Fridge Power")
    freezer = Entity("sensor.fridge_freezer", "u2", "d1", ("temperature",), "Freezer Temperature")
    main = Entity("switch.fridge", "u3", "d1", ("on_off",), "fridge")
    alone = Entity("scene.movie_night", "u4", None, ("scene",), "Movie night")
    # The device's name once: the entity's own part is what it is on the device; the main feature has none.
    assert (entity_name(power, fridge), friendly_name(power, fridge)) == ("Power", "Fridge Power")
    assert (entity_name(freezer, fridge), friendly_name(freezer, fridge)) == ("Freezer Temperature",
                                                                             "Fridge Freezer Temperature")
    assert (entity_name(main, fridge), friendly_name(main, fridge)) == (None, "Fridge")
    assert (entity_name(alone, None), friendly_name(alone, None)) == ("Movie night", "Movie night")
    # Renamed by the household: the new name leads, the name the driver gave is still recognised in entity names.
    fridge.name_by_user = "Kitchen fridge"
    assert friendly_name(power, fridge) == "Kitchen fridge Power"


def test_domain_attributes_come_from_the_capabilities() -> None:
    assert light_color_modes(("on_off",)) == ("onoff",)
    assert light_color_modes(("on_off", "level")) == ("brightness",)
    assert light_color_modes(("on_off", "level", "color_temperature", "color")) == ("color_temp", "hs")
    energy = describe(Entity("sensor.meter", "u", None, ("energy",), "Meter"), None)
    assert energy.shown["state_class"] == "total_increasing" and energy.shown["unit_of_measurement"] == "kWh"
    odd = describe(Entity("sensor.odd", "u", None, ("power",), "Odd", device_class="wattage"), None)
    assert "device_class" not in odd.shown  # a class Home Assistant does not know is left out, not passed on
    cover = describe(Entity("cover.blind", "u", None, ("cover_position",), "Blind"), None)
    assert cover.capabilities["supported_features"] == 1 | 2 | 4 | 8
    climate = describe(Entity("climate.ac", "u", None, ("thermostat",), "AC"), None)
    assert (climate.capabilities["min_temp"], climate.capabilities["max_temp"]) == (5, 35)
    assert "cool" in climate.capabilities["hvac_modes"]


def test_every_state_written_carries_the_look(hub: Hub) -> None:
    fridge = _fridge(hub)
    power = hub.entities.async_get_or_create(unique_id="t:power", capabilities=("power",), name="Fridge Power",
                                             device_id=fridge.id)
    climate = hub.entities.async_get_or_create(unique_id="t:ac", capabilities=("thermostat",), name="Fridge Cooler",
                                               device_id=fridge.id)
    state = hub.states.async_set(power.entity_id, 85.0, {}, Context("t"))
    assert dict(state.attributes) == {"friendly_name": "Fridge Power", "unit_of_measurement": "W",
                                      "device_class": "power", "state_class": "measurement"}
    # What the appliance says it can do stands over the catalogue's defaults; what it is named does not.
    state = hub.states.async_set(climate.entity_id, "cool", {"hvac_modes": ["off", "cool"], "friendly_name": "x"})
    assert state.attributes["hvac_modes"] == ["off", "cool"] and state.attributes["friendly_name"] == "Fridge Cooler"
    assert state.attributes["supported_features"] == 1 | 128 | 256
    # A state with no registry entry is written as given.
    assert dict(hub.states.async_set("sensor.unregistered", 1, {"a": 1}).attributes) == {"a": 1}
    # Writing the same again is no change: the Look does not make every write an event.
    events: list[Any] = []
    hub.bus.listen(EVENT_STATE_CHANGED, events.append)
    hub.states.async_set(power.entity_id, 85.0, {}, Context("t"))
    assert events == []


def test_lights_show_their_colour_mode(hub: Hub) -> None:
    lamp = hub.entities.async_get_or_create(unique_id="t:lamp", capabilities=("on_off", "level", "color"),
                                            name="Lamp")
    tunable = hub.entities.async_get_or_create(unique_id="t:white", capabilities=("on_off", "level",
                                                                                  "color_temperature"), name="White")
    on = hub.states.async_set(lamp.entity_id, "on", {"brightness": 40, "rgb_color": [255, 0, 0]}).attributes
    assert on["supported_color_modes"] == ["hs"] and on["color_mode"] == "hs" and on["hs_color"] == [0.0, 100.0]
    assert hub.states.async_set(lamp.entity_id, "off", {"brightness": 0}).attributes["color_mode"] is None
    white = hub.states.async_set(tunable.entity_id, "on", {"color_temp_kelvin": 2700}).attributes
    assert white["color_mode"] == "color_temp" and white["color_temp"] == 370
    assert white["min_color_temp_kelvin"] < white["max_color_temp_kelvin"]
    assert white["min_mireds"] == 1_000_000 // white["max_color_temp_kelvin"]
    # Unavailable keeps the attributes as they were, colour mode included.
    gone = hub.states.async_set(tunable.entity_id, UNAVAILABLE, dict(white)).attributes
    assert gone["color_mode"] == "color_temp"


def test_a_renamed_device_renames_its_entities_at_once(hub: Hub) -> None:
    fridge = _fridge(hub)
    power = hub.entities.async_get_or_create(unique_id="t:power", capabilities=("power",), name="Fridge Power",
                                             device_id=fridge.id)
    hub.states.async_set(power.entity_id, 85.0, {"phase": "L1"}, Context("t"))
    seen: list[Any] = []
    hub.bus.listen(EVENT_STATE_CHANGED, lambda e: seen.append(e.data["new_state"]))
    hub.devices.async_update(fridge.id, name_by_user="Kitchen fridge")
    [renamed] = seen
    assert renamed.attributes["friendly_name"] == "Kitchen fridge Power"
    assert renamed.value == 85.0 and renamed.attributes["phase"] == "L1"  # only the name changed
    hub.devices.async_update(fridge.id, sw_version="2.0")  # changes nothing shown: no new state
    assert len(seen) == 1
    # The next state the driver writes keeps the new name.
    assert hub.states.async_set(power.entity_id, 86.0, {}).attributes["friendly_name"] == "Kitchen fridge Power"


def test_the_households_entity_name_and_icon_show_at_once(hub: Hub) -> None:
    fridge = _fridge(hub)
    power = hub.entities.async_get_or_create(unique_id="t:power", capabilities=("power",), name="Fridge Power",
                                             device_id=fridge.id)
    hub.states.async_set(power.entity_id, 85.0, {}, Context("t"))
    hub.entities.async_update(power.entity_id, name_by_user="Compressor", icon="mdi:snowflake")
    attributes = hub.states.get(power.entity_id).attributes  # type: ignore[union-attr]
    assert (attributes["friendly_name"], attributes["icon"]) == ("Fridge Compressor", "mdi:snowflake")
    hub.entities.async_update(power.entity_id, name_by_user=None, icon=None)  # back to the driver's
    attributes = hub.states.get(power.entity_id).attributes  # type: ignore[union-attr]
    assert attributes["friendly_name"] == "Fridge Power" and "icon" not in attributes
