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

# van Kasteren house A: sensor id -> (name, area, capability).  Cupboards, fridge and freezer are
# "contact" (an opening that is not a room door); appliances that report use are "power".
KASTEREN_SENSORS: dict[int, tuple[str, str, str]] = {
    1: ("Microwave", "kitchen", "power"),
    5: ("Hall-Toilet door", "toilet", "door"),
    6: ("Hall-Bathroom door", "bathroom", "door"),
    7: ("Cups cupboard", "kitchen", "contact"),
    8: ("Fridge", "kitchen", "contact"),
    9: ("Plates cupboard", "kitchen", "contact"),
    12: ("Frontdoor", "hall", "door"),
    13: ("Dishwasher", "kitchen", "power"),
    14: ("ToiletFlush", "toilet", "water"),
    17: ("Freezer", "kitchen", "contact"),
    18: ("Pans Cupboard", "kitchen", "contact"),
    20: ("Washingmachine", "laundry", "power"),
    23: ("Groceries Cupboard", "kitchen", "contact"),
    24: ("Hall-Bedroom door", "bedroom", "door"),
}

# van Kasteren activity ids -> names used in the paper (the protocol's classes, plus "idle").
KASTEREN_ACTIVITIES: dict[int, str] = {
    1: "leave house",
    4: "use toilet",
    5: "take shower",
    10: "go to bed",
    13: "prepare breakfast",
    15: "prepare dinner",
    17: "get drink",
}

# Activity names (Kasteren, CASAS aruba/milan) -> household scene, for transfer and mixed training.
ACTIVITY_TO_SCENE: dict[str, str] = {
    "leave house": "away",
    "use toilet": "bathing",
    "take shower": "bathing",
    "go to bed": "sleeping",
    "prepare breakfast": "cooking",
    "prepare dinner": "cooking",
    "get drink": "cooking",
    "idle": IDLE,
    # CASAS aruba / milan
    "sleeping": "sleeping",
    "sleep": "sleeping",
    "bed_to_toilet": "bathing",
    "meal_preparation": "cooking",
    "kitchen_activity": "cooking",
    "wash_dishes": "cooking",
    "eating": "eating",
    "dining_rm_activity": "eating",
    "relax": "relaxing",
    "watch_tv": "relaxing",
    "read": "relaxing",
    "leave_home": "away",
    "enter_home": IDLE,
    "bathing": "bathing",
    "guest_bathroom": "bathing",
    "master_bathroom": "bathing",
    "work": IDLE,
    "desk_activity": IDLE,
    "housekeeping": IDLE,
    "respirate": IDLE,
    "chores": IDLE,
    "morning_meds": "waking_up",
    "eve_meds": IDLE,
}


def to_scene(activity: str) -> str:
    return ACTIVITY_TO_SCENE.get(activity.strip().lower(), IDLE)


# CASAS sensor-name prefixes -> capability; areas come from a per-home map (no standard exists).
CASAS_PREFIX_CAPABILITY: dict[str, str] = {
    "M": "motion",
    "MA": "motion",
    "D": "door",
    "I": "contact",
    "L": "light",
    "LS": "light",
}
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
    "study": "office",
}


def normalize_area(area: str | None, known: tuple[str, ...]) -> str:
    """Map a hub area id onto one of ``known`` (falling back to "other")."""
    if not area:
        return "other"
    slug = area.strip().lower().replace(" ", "_").replace("-", "_")
    slug = AREA_SYNONYMS.get(slug, slug)
    return slug if slug in known else "other"


def entity_channel(
    domain: str, capabilities: tuple[str, ...], device_class: str | None, area: str | None, areas: tuple[str, ...]
) -> tuple[str, str] | None:
    """(area, capability) channel of a hub entity, or None when it says nothing about the household."""
    cap = capability_of(domain, capabilities, device_class)
    return None if cap is None else (normalize_area(area, areas), cap)
