"""Mappings, as data, from foreign sensors and activity names onto the common device model.

Everything that turns "sensor 14" or "ToiletFlush" into (area, capability) lives here, so that datasets,
the simulator and the live hub all speak the same channel language as ``FeatureSpec``.
"""

from __future__ import annotations

from typing import Any

# The household scenes the hub exposes; "idle" = at home, nothing specific (the paper's no-activity class).
SCENES: tuple[str, ...] = (
    "sleeping",
    "waking_up",
    "cooking",
    "eating",
    "bathing",
    "relaxing",
    "away",
    "guests",
    "idle",
)
IDLE = "idle"

# Which sensor is where, and which activity label means which scene, is data: mapping files
# (``mapping_file``; the built-in ones in ``hub/recognition/mappings/``, one per benchmarked dataset in
# ``bench/datasets/``), never a table here.


# CASAS sensor-name prefixes -> capability; areas come from a per-home map (no standard exists).
CASAS_PREFIX_CAPABILITY: dict[str, str] = {
    "M": "motion",
    "MA": "motion",
    "D": "door",
    "I": "contact",
    "L": "light",
    "LS": "light",
}


def casas_capability(sensor: str) -> str | None:
    """The capability of a CASAS sensor from its name's letters (``M012`` -> motion); None if unknown."""
    return CASAS_PREFIX_CAPABILITY.get("".join(ch for ch in sensor if ch.isalpha()).upper())


CASAS_ACTIVE_VALUES = frozenset({"ON", "OPEN", "PRESENT", "1"})
# Power above this many watts counts as "in use".
POWER_ON_WATTS = 5.0

_ON_STATES = frozenset({"on", "open", "opened", "detected", "home", "playing", "true", "1", "wet"})


def capability_of(domain: str, capabilities: tuple[str, ...], device_class: str | None) -> str | None:
    """Capability channel for a hub entity (HA domain, qilu capabilities, HA device class)."""
    dc = (device_class or "").lower()
    if dc in ("motion", "occupancy", "presence") or "motion" in capabilities:
        return "motion"
    if dc in ("door", "garage_door"):
        return "door"
    if dc in ("window", "opening") or "contact" in capabilities:
        return "contact"
    if dc in ("moisture", "water") or "water" in capabilities:
        return "water"
    if domain == "media_player" or dc in ("tv", "speaker", "receiver"):
        return "media"
    if domain == "light":
        return "light"
    if dc == "power" or "power" in capabilities:
        return "power"
    if domain == "switch" and "on_off" in capabilities:
        return "power"  # a smart plug: on means the appliance may be in use
    return None


def is_active(capability: str, value: Any) -> bool:
    """Whether a raw state value means the channel is active."""
    if isinstance(value, bool):
        return value
    if capability == "power":
        try:
            return float(value) > POWER_ON_WATTS
        except (TypeError, ValueError):
            pass
    if isinstance(value, int | float):
        return value > 0
    return str(value).strip().lower() in _ON_STATES


# Free-form area ids/names (slugified) -> the spec's areas.
AREA_SYNONYMS: dict[str, str] = {
    "entrance": "hall",
    "entry": "hall",
    "hallway": "hall",
    "corridor": "hall",
    "front_door": "hall",
    "lounge": "living_room",
    "living": "living_room",
    "livingroom": "living_room",
    "sitting_room": "living_room",
    "tv_room": "living_room",
    "dining": "dining_room",
    "diningroom": "dining_room",
    "bath": "bathroom",
    "shower": "bathroom",
    "wc": "toilet",
    "restroom": "toilet",
    "master_bedroom": "bedroom",
    "guest_bedroom": "bedroom",
    "utility": "laundry",
    "utility_room": "laundry",
    "laundry_room": "laundry",
    "washroom": "laundry",
    "study": "office",
    "home_office": "office",
    "office_study": "office",  # "office/study"
    "workroom": "office",
    "den": "living_room",  # in most homes a den is a second sitting room
    "family_room": "living_room",
    "sofa": "living_room",
    "couch": "living_room",
    "foyer": "hall",
    "vestibule": "hall",
    "porch": "hall",
    "landing": "hall",
    "stairs": "hall",
    "staircase": "hall",
    "pantry": "kitchen",
    "kitchenette": "kitchen",
    "larder": "kitchen",
    "scullery": "kitchen",
    "dinning_room": "dining_room",  # the common misspelling, as in some datasets' floor plans
    "dinning": "dining_room",
    "dining_area": "dining_room",
    "bathroom_upstairs": "bathroom",
    "bathroom_downstairs": "bathroom",
    "ensuite": "bathroom",
    "en_suite": "bathroom",
    "toilet_room": "toilet",
    "lavatory": "toilet",
    "loo": "toilet",
    "water_closet": "toilet",
    "bedroom_upstairs": "bedroom",
    "sleeping_room": "bedroom",
    "kids_room": "bedroom",
    "nursery": "bedroom",
}


def area_slug(area: str) -> str:
    """"Living Room", "living-room" -> "living_room"."""
    return "_".join(area.strip().lower().replace("-", " ").replace("/", " ").split())


def normalize_area(area: str | None, known: tuple[str, ...]) -> str:
    """Map a hub area id onto one of ``known`` (falling back to "other")."""
    if not area:
        return "other"
    slug = area_slug(area)
    slug = AREA_SYNONYMS.get(slug, slug)
    return slug if slug in known else "other"


def entity_channel(
    domain: str, capabilities: tuple[str, ...], device_class: str | None, area: str | None, areas: tuple[str, ...]
) -> tuple[str, str] | None:
    """(area, capability) channel of a hub entity, or None when it says nothing about the household."""
    cap = capability_of(domain, capabilities, device_class)
    return None if cap is None else (normalize_area(area, areas), cap)
