"""What the headset's world looks like to the bridge: which reference space panels live in, and how they are
composited over the room (environment blend mode, or Meta's passthrough layer). Choices only; the OpenXR
calls are in runtime.py.

**Space.** ``auto`` takes STAGE first: it is fixed to the room (the play area), so a panel stays where the
household put it across sessions and recentering. Without STAGE, LOCAL_FLOOR (XR_EXT_local_floor, core in
OpenXR 1.1): floor level, its origin where the session started. Without either, LOCAL, whose origin is at
the head: the bridge moves it down by ``eye_height`` so that heights in scene files (metres above the floor)
still hold.

**Blend.** The runtime says which environment blend modes it supports (xrEnumerateEnvironmentBlendModes);
the first of the preference list that it offers is used, and ``passthrough`` means an OPAQUE frame with an
XR_FB_passthrough layer beneath the panels. Nothing is hard-coded: an additive-only see-through headset gets
ADDITIVE, a passthrough headset ALPHA_BLEND, a VR-only runtime OPAQUE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xr

from .geometry import Pose

SPACE_CHOICES = ("auto", "stage", "local_floor", "local")
BLEND_CHOICES = ("alpha_blend", "passthrough", "additive", "opaque")
DEFAULT_BLEND = ("alpha_blend", "passthrough", "additive", "opaque")  # the room visible wherever offered
DEFAULT_EYE_HEIGHT = 1.6  # metres: the LOCAL origin's usual height above the floor when nothing better is known
PASSTHROUGH_EXTENSION = "XR_FB_passthrough"
LOCAL_FLOOR_EXTENSION = "XR_EXT_local_floor"

_SPACES = {"stage": xr.ReferenceSpaceType.STAGE, "local_floor": xr.ReferenceSpaceType.LOCAL_FLOOR,
           "local": xr.ReferenceSpaceType.LOCAL}
_AUTO_ORDER = ("stage", "local_floor", "local")
_BLENDS = {"alpha_blend": xr.EnvironmentBlendMode.ALPHA_BLEND, "additive": xr.EnvironmentBlendMode.ADDITIVE,
           "opaque": xr.EnvironmentBlendMode.OPAQUE, "passthrough": xr.EnvironmentBlendMode.OPAQUE}


class EnvironmentChoiceError(Exception):
    """The runtime offers nothing the configuration allows; the message says what it does offer."""


@dataclass(frozen=True, slots=True)
class SpaceChoice:
    name: str
    kind: xr.ReferenceSpaceType
    origin: Pose  # the bridge's base space in the chosen reference space (LOCAL: moved down to the floor)


@dataclass(frozen=True, slots=True)
class BlendChoice:
    name: str
    mode: xr.EnvironmentBlendMode
    passthrough_layer: bool  # XR_FB_passthrough under the panels


def parse_blend(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BLEND_CHOICES]
    if unknown or not names:
        raise ValueError(f"unknown blend mode(s) {', '.join(unknown) or '(none)'}; use {', '.join(BLEND_CHOICES)}")
    return names


def choose_space(offered: Iterable[xr.ReferenceSpaceType], wanted: str = "auto",
                 eye_height: float = DEFAULT_EYE_HEIGHT) -> SpaceChoice:
    have = set(offered)
    order = _AUTO_ORDER if wanted == "auto" else (wanted,)
    for name in order:
        kind = _SPACES[name]
        if kind in have:
            origin = Pose((0.0, -eye_height, 0.0)) if name == "local" else Pose()
            return SpaceChoice(name, kind, origin)
    names = ", ".join(sorted(k.name for k in have))
    raise EnvironmentChoiceError(f"the runtime offers no {wanted.upper()} reference space (it offers {names})")


def choose_blend(offered: Sequence[xr.EnvironmentBlendMode], extensions: Iterable[str],
                 preference: Sequence[str] = DEFAULT_BLEND) -> BlendChoice:
    have = set(offered)
    exts = set(extensions)
    for name in preference:
        mode = _BLENDS[name]
        if mode not in have:
            continue
        if name == "passthrough" and PASSTHROUGH_EXTENSION not in exts:
            continue
        return BlendChoice(name, mode, name == "passthrough")
    modes = ", ".join(xr.EnvironmentBlendMode(m).name for m in offered) or "none"
    raise EnvironmentChoiceError(f"the runtime supports none of the blend modes asked for ({', '.join(preference)}); "
                           f"it offers {modes}" + (" and XR_FB_passthrough" if PASSTHROUGH_EXTENSION in exts
                                                   else ""))
