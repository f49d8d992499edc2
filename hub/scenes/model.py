"""Typed scene model built from a validated scene file.

Every item keeps its source line for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ActionName = Literal["select", "grab", "menu"]
ACTIONS: tuple[ActionName, ...] = ("select", "grab", "menu")
BridgeAction = Literal["move_panel", "toggle_menu", "none"]


@dataclass(frozen=True)
class CommandCall:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class ActionBinding:
    """What an XR action does: exactly one of call / bridge is set."""

    call: CommandCall | None = None
    bridge: BridgeAction | None = None
    line: int = 0


@dataclass(frozen=True)
class Target:
    entity_id: str
    call: CommandCall
    line: int = 0


@dataclass(frozen=True)
class ScheduleTrigger:
    hour: int
    minute: int
    days: frozenset[int] | None  # 0 = Monday; None = every day
    line: int = 0


@dataclass(frozen=True)
class SituationTrigger:
    label: str
    min_confidence: float = 0.7
    cooldown: float = 300.0
    line: int = 0


@dataclass(frozen=True)
class HomeScene:
    name: str
    targets: tuple[Target, ...]
    schedules: tuple[ScheduleTrigger, ...] = ()
    situations: tuple[SituationTrigger, ...] = ()
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class Placement:
    relative_to: Literal["device", "area", "anchor", "stage"]
    ref: str | None = None
    offset: tuple[float, float, float] = (0.0, 1.4, -1.0)
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class Control:
    type: Literal["toggle", "button", "slider", "readout"]
    entity_id: str
    label: str | None = None
    attribute: str | None = None
    min: float = 0.0
    max: float = 100.0
    bindings: dict[str, ActionBinding] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Panel:
    id: str
    placement: Placement
    controls: tuple[Control, ...]
    title: str = ""
    width_m: float = 0.5
    height_m: float = 0.3
    px_per_m: int = 1024
    layout: Literal["grid", "list"] = "list"
    columns: int = 1
    bindings: dict[str, ActionBinding] = field(default_factory=dict)
    line: int = 0

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.entity_id for c in self.controls))

    @property
    def pixel_size(self) -> tuple[int, int]:
        w = max(16, round(self.width_m * self.px_per_m))
        h = max(16, round(self.height_m * self.px_per_m))
        return w, h


@dataclass(frozen=True)
class ImmersiveScene:
    name: str
    panels: tuple[Panel, ...]
    bindings: dict[str, ActionBinding] = field(default_factory=dict)
    description: str = ""
    line: int = 0

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for p in self.panels for e in p.entities))


@dataclass(frozen=True)
class SceneFile:
    path: str
    home_scenes: tuple[HomeScene, ...] = ()
    immersive_scenes: tuple[ImmersiveScene, ...] = ()

    def immersive(self, name: str | None = None) -> ImmersiveScene:
        for s in self.immersive_scenes:
            if name is None or s.name == name:
                return s
        raise KeyError(name or "no immersive scene in file")

    def home(self, name: str) -> HomeScene:
        for s in self.home_scenes:
            if s.name == name:
                return s
        raise KeyError(name)


# Defaults when neither control, panel nor scene binds an action (why: a toggle should just work).
_TYPE_DEFAULTS: dict[str, dict[str, ActionBinding]] = {
    "toggle": {"select": ActionBinding(call=CommandCall("toggle"))},
    "button": {},
    "slider": {"select": ActionBinding(call=CommandCall("turn_on"))},
    "readout": {},
}
_ACTION_DEFAULTS: dict[str, ActionBinding] = {
    "grab": ActionBinding(bridge="move_panel"),
    "menu": ActionBinding(bridge="toggle_menu"),
}


def resolve_binding(
    action: str, control: Control | None, panel: Panel | None, scene: ImmersiveScene
) -> ActionBinding | None:
    """Most specific wins: control > panel > scene > control-type default > action default."""
    if control is not None and action in control.bindings:
        return control.bindings[action]
    if panel is not None and action in panel.bindings:
        return panel.bindings[action]
    if action in scene.bindings:
        return scene.bindings[action]
    if control is not None and action in _TYPE_DEFAULTS[control.type]:
        return _TYPE_DEFAULTS[control.type][action]
    return _ACTION_DEFAULTS.get(action)
