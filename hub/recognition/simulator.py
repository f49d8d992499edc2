"""A seeded household simulator: daily routines over simulated appliances, for bootstrapping a model.

Each simulated home gets its own sensor kit (some have motion sensors, some only door and appliance
sensors, like van Kasteren's house) so that a model trained here does not lean on one kind of sensor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from .datasets import Dataset
from .features import DeviceEvent
from .interval import Interval

# (area, capability, kind, rate): "pulse" = brief activations at ``rate`` per minute; "hold" = on for the
# whole scene (TV, shower water, lights).
Emission = tuple[str, str, str, float]

PROFILES: dict[str, list[Emission]] = {
    "sleeping": [("bedroom", "motion", "pulse", 0.02)],
    "waking_up": [
        ("bedroom", "motion", "pulse", 1.0),
        ("bedroom", "light", "hold", 0.0),
        ("bedroom", "door", "pulse", 0.15),
        ("toilet", "door", "pulse", 0.1),
        ("toilet", "water", "pulse", 0.06),
        ("hall", "motion", "pulse", 0.3),
    ],
    "bathing": [
        ("bathroom", "door", "pulse", 0.1),
        ("bathroom", "motion", "pulse", 1.0),
        ("bathroom", "water", "hold", 0.0),
        ("bathroom", "light", "hold", 0.0),
    ],
    "cooking": [
        ("kitchen", "motion", "pulse", 1.5),
        ("kitchen", "contact", "pulse", 0.8),
        ("kitchen", "power", "pulse", 0.15),
        ("kitchen", "light", "hold", 0.0),
    ],
    "eating": [
        ("dining_room", "motion", "pulse", 0.6),
        ("kitchen", "contact", "pulse", 0.05),
        ("dining_room", "light", "hold", 0.0),
    ],
    "relaxing": [
        ("living_room", "media", "hold", 0.0),
        ("living_room", "motion", "pulse", 0.25),
        ("living_room", "light", "hold", 0.0),
        ("kitchen", "contact", "pulse", 0.01),
    ],
    "away": [],
    "guests": [
        ("hall", "door", "pulse", 0.05),
        ("living_room", "motion", "pulse", 2.0),
        ("dining_room", "motion", "pulse", 1.0),
        ("kitchen", "motion", "pulse", 0.8),
        ("kitchen", "contact", "pulse", 0.5),
        ("toilet", "door", "pulse", 0.08),
        ("toilet", "water", "pulse", 0.04),
        ("living_room", "light", "hold", 0.0),
        ("dining_room", "light", "hold", 0.0),
    ],
    "idle": [
        ("living_room", "motion", "pulse", 0.1),
        ("hall", "motion", "pulse", 0.05),
        ("kitchen", "contact", "pulse", 0.02),
        ("office", "motion", "pulse", 0.1),
        ("laundry", "power", "pulse", 0.003),
    ],
}

# Scene boundaries that real sensors mark: leaving/returning opens the front door, a shower opens the
# bathroom door, going to bed the bedroom door.
EDGE_EVENTS: dict[str, list[tuple[str, str]]] = {
    "away": [("hall", "door")],
    "bathing": [("bathroom", "door")],
    "sleeping": [("bedroom", "door")],
    "guests": [("hall", "door")],
}


@dataclass(frozen=True)
class SimConfig:
    days: int = 14
    homes: int = 2
    seed: int = 0
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def _kit(rng: random.Random) -> set[tuple[str, str]]:
    """Which (area, capability) channels this home has: doors and appliances always, motion/lights/TV sometimes."""
    channels = {(a, c) for prof in PROFILES.values() for a, c, _k, _r in prof}
    channels |= {ch for edges in EDGE_EVENTS.values() for ch in edges}
    dropped = {c for c, p in (("motion", 0.4), ("light", 0.5), ("media", 0.3)) if rng.random() < p}
    return {(a, c) for a, c in channels if c not in dropped}


def _day_plan(rng: random.Random, weekday: int) -> list[tuple[float, str]]:
    """(minutes after midnight, scene) changes for one day; the caller wraps sleep across midnight."""
    weekend = weekday >= 5
    m = lambda mu, sd: max(0.0, rng.gauss(mu, sd))  # noqa: E731 - tiny local helper
    wake = m(9 * 60 if weekend else 7 * 60, 30)
    plan: list[tuple[float, str]] = [(0.0, "sleeping")]
    if rng.random() < 0.5:  # a night-time toilet visit
        t = rng.uniform(60, wake - 60)
        plan += [(t, "bathing"), (t + rng.uniform(2, 5), "sleeping")]
    t = wake
    plan.append((t, "waking_up"))
    t += m(15, 5) + 3
    if rng.random() < 0.8:
        plan.append((t, "bathing"))
        t += m(15, 5) + 4
    plan.append((t, "cooking"))
    t += m(10, 4) + 3
    plan.append((t, "eating"))
    t += m(15, 5) + 5
    if not weekend and rng.random() < 0.85:
        plan.append((t, "idle"))
        t += m(15, 10) + 2
        plan.append((t, "away"))
        t = max(t + 60, m(17.5 * 60, 60))
    elif rng.random() < 0.5:
        plan.append((t, "idle"))
        t += m(120, 60) + 10
        plan.append((t, "away"))
        t += m(180, 60) + 30
    plan.append((t, "idle"))
    t += m(40, 20) + 5
    plan.append((t, "relaxing"))
    t = max(t + 10, m(18.5 * 60, 30))
    plan.append((t, "cooking"))
    t += m(35, 10) + 10
    guests = rng.random() < (0.45 if weekend else 0.1)
    plan.append((t, "guests" if guests else "eating"))
    t += m(150, 40) + 60 if guests else m(25, 8) + 8
    plan.append((t, "relaxing"))
    bed = max(t + 20, m(23 * 60, 40))
    if rng.random() < 0.3:
        plan += [(bed - 25, "bathing"), (bed - 10, "idle")]
    plan.append((min(bed, 24 * 60 - 1), "sleeping"))
    return sorted((t, s) for t, s in plan if t < 24 * 60)


def simulate(config: SimConfig = SimConfig()) -> Dataset:
    """Events and labelled scene intervals for ``config.homes`` homes of ``config.days`` days each.

    Homes are laid end to end in time (each starts at midnight after the previous), so the dataset stays
    one time-ordered stream that the feature extractor can walk.
    """
    rng = random.Random(config.seed)
    events: list[DeviceEvent] = []
    intervals: list[Interval] = []
    base = config.start.timestamp()
    day_index = 0
    for _home in range(config.homes):
        kit = _kit(rng)
        for _d in range(config.days):
            day0 = base + day_index * 86400.0
            weekday = (config.start.weekday() + day_index) % 7
            plan = _day_plan(rng, weekday)
            for k, (minute, scene) in enumerate(plan):
                start = day0 + minute * 60.0
                end = day0 + (plan[k + 1][0] * 60.0 if k + 1 < len(plan) else 86400.0)
                if end <= start:
                    continue
                intervals.append(Interval(start, end, scene))
                events += _emit(rng, kit, scene, start, end)
            day_index += 1
        # An empty day between homes, so histories do not bleed into each other: nobody home = away.
        gap = base + day_index * 86400.0
        intervals.append(Interval(gap, gap + 86400.0, "away"))
        day_index += 1
    events.sort(key=lambda e: e.ts)
    intervals = [iv for iv in intervals if iv.end > iv.start]
    end = base + day_index * 86400.0
    return Dataset("simulator", events, intervals, base, end, {"seed": config.seed, "homes": config.homes})


def _emit(rng: random.Random, kit: set[tuple[str, str]], scene: str, start: float, end: float) -> list[DeviceEvent]:
    out: list[DeviceEvent] = []
    for area, cap in EDGE_EVENTS.get(scene, []):
        if (area, cap) in kit:
            t = start + rng.uniform(0, 20)
            off = t + rng.uniform(2, 8)
            out += [DeviceEvent(t, area, cap, True, "edge"), DeviceEvent(off, area, cap, False, "edge")]
    for area, cap, kind, rate in PROFILES[scene]:
        if (area, cap) not in kit:
            continue
        if kind == "hold":
            if rng.random() < 0.9:  # people sometimes skip the light or the TV
                on = start + rng.uniform(0, 60)
                off = max(on + 1, end - rng.uniform(0, 60))
                out += [DeviceEvent(on, area, cap, True, "hold"), DeviceEvent(off, area, cap, False, "hold")]
            continue
        t, k = start, 0
        while True:
            t += rng.expovariate(rate / 60.0) if rate > 0 else end - start + 1
            if t >= end:
                break
            on_for = rng.uniform(1, 10) if cap != "power" else rng.uniform(30, 180)
            # Pulses rotate over three devices per channel (a kitchen has several cupboards).
            dev, k = f"dev{k % 3}", k + 1
            out += [DeviceEvent(t, area, cap, True, dev), DeviceEvent(min(t + on_for, end), area, cap, False, dev)]
    return out
