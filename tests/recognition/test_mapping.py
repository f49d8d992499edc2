"""The foreign-sensor and entity mappings all land on channels of the feature spec."""

from __future__ import annotations

import pytest

from qilu_hub.recognition.datasets import builtin_mapping
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.mapping import SCENES, capability_of, is_active, normalize_area


def test_every_kasteren_sensor_maps_to_a_spec_channel() -> None:
    house_a = builtin_mapping("kasteren_a")
    assert len(house_a.sensors) == 14
    for sensor in house_a.sensors.values():
        assert (sensor.area, sensor.capability) in DEFAULT_SPEC.channels
    assert (house_a.sensors["1"].area, house_a.sensors["1"].capability) == ("kitchen", "power")
    assert (house_a.sensors["12"].area, house_a.sensors["12"].capability) == ("hall", "door")


def test_activities_map_to_scenes_and_unknown_names_are_errors_not_idle() -> None:
    for name in ("kasteren_a", "casas"):
        m = builtin_mapping(name)
        assert set(m.scenes.values()) <= set(SCENES)
    assert builtin_mapping("kasteren_a").scene_of("go to bed") == "sleeping"
    assert builtin_mapping("casas").scene_of("meal_preparation") == "cooking"  # labels differ in case
    with pytest.raises(KeyError):
        builtin_mapping("casas").scene_of("something new")


@pytest.mark.parametrize(
    ("domain", "caps", "dc", "expected"),
    [
        ("binary_sensor", ("motion",), "motion", "motion"),
        ("binary_sensor", ("contact",), "door", "door"),
        ("binary_sensor", ("contact",), "window", "contact"),
        ("sensor", ("power",), "power", "power"),
        ("media_player", ("on_off",), None, "media"),
        ("light", ("on_off", "brightness"), None, "light"),
        ("switch", ("on_off",), None, "power"),
        ("sensor", ("temperature",), "temperature", None),
    ],
)
def test_capability_of_entities(domain: str, caps: tuple[str, ...], dc: str | None, expected: str | None) -> None:
    assert capability_of(domain, caps, dc) == expected


def test_is_active_and_areas() -> None:
    assert is_active("power", "120.5") and not is_active("power", 1.0)
    assert is_active("door", "on") and is_active("media", "playing") and not is_active("motion", "off")
    assert normalize_area("Living Room", DEFAULT_SPEC.areas) == "living_room"
    assert normalize_area("wc", DEFAULT_SPEC.areas) == "toilet"
    assert normalize_area("attic", DEFAULT_SPEC.areas) == "other"


@pytest.mark.parametrize(
    ("name", "area"),
    [("Foyer", "hall"), ("den", "living_room"), ("Pantry", "kitchen"), ("office/study", "office"),
     ("Study", "office"), ("Dinning Room", "dining_room"), ("family-room", "living_room"), ("Lavatory", "toilet")],
)
def test_area_synonyms(name: str, area: str) -> None:
    assert normalize_area(name, DEFAULT_SPEC.areas) == area
    assert normalize_area(None, DEFAULT_SPEC.areas) == "other"
