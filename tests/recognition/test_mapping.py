"""The foreign-sensor and entity mappings all land on channels of the feature spec."""

from __future__ import annotations

import pytest

from hub.recognition.features import DEFAULT_SPEC
from hub.recognition.mapping import (
    ACTIVITY_TO_SCENE,
    KASTEREN_ACTIVITIES,
    KASTEREN_SENSORS,
    SCENES,
    capability_of,
    is_active,
    normalize_area,
    to_scene,
)


def test_every_kasteren_sensor_maps_to_a_spec_channel() -> None:
    assert len(KASTEREN_SENSORS) == 14
    for _name, area, cap in KASTEREN_SENSORS.values():
        assert (area, cap) in DEFAULT_SPEC.channels
    assert KASTEREN_SENSORS[1][1:] == ("kitchen", "power")
    assert KASTEREN_SENSORS[12][1:] == ("hall", "door")


def test_activities_map_to_scenes() -> None:
    assert set(ACTIVITY_TO_SCENE.values()) <= set(SCENES)
    for name in KASTEREN_ACTIVITIES.values():
        assert name in ACTIVITY_TO_SCENE
    assert to_scene("Meal_Preparation") == "cooking"
    assert to_scene("something new") == "idle"


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
    assert normalize_area(None, DEFAULT_SPEC.areas) == "other"
