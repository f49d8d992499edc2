"""XR input -> intents: aim-ray hit testing over panels, press edges, and scene bindings -> hub commands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qilu_hub.scenes.model import ImmersiveScene, Panel, resolve_binding

from .geometry import Hit, Pose, aim_ray, quat_conj, quat_mul, ray_quad
from .layout import PanelLayout


@dataclass(frozen=True)
class CommandIntent:
    entity_id: str
    command: str
    args: dict[str, Any]
    panel_id: str
    control: int


@dataclass(frozen=True)
class BridgeIntent:
    action: str  # move_panel | toggle_menu
    panel_id: str | None
    hand: int


Intent = CommandIntent | BridgeIntent


@dataclass(frozen=True)
class PanelTarget:
    panel_id: str
    control: int | None
    hit: Hit


@dataclass
class PlacedPanel:
    panel: Panel
    layout: PanelLayout
    pose: Pose  # in the bridge's base space (stage)
    visible: bool = True


def pick(aim: Pose, panels: Iterable[PlacedPanel]) -> PanelTarget | None:
    """Nearest visible panel the aim ray hits, and the control under the hit point."""
    origin, direction = aim_ray(aim)
    ox, oy, oz = origin
    dx, dy, dz = direction
    dd = dx * dx + dy * dy + dz * dz
    if dd < 1e-18:
        return None  # no direction (a degenerate aim pose): it points at nothing
    best: PanelTarget | None = None
    for pp in panels:
        if not pp.visible:
            continue
        # a ray that passes farther from the panel's centre than its half-diagonal cannot hit it: ruled out with
        # a few multiplications instead of the full intersection (both rays, every panel, every frame: with 100
        # panels the intersections alone took about 1 ms a frame)
        cx, cy, cz = pp.pose.position
        vx, vy, vz = cx - ox, cy - oy, cz - oz
        along = vx * dx + vy * dy + vz * dz
        reach = (pp.panel.width_m * pp.panel.width_m + pp.panel.height_m * pp.panel.height_m) / 4
        if vx * vx + vy * vy + vz * vz - along * along / dd > reach * 1.0001 + 1e-9:
            continue
        h = ray_quad(origin, direction, pp.pose, pp.panel.width_m, pp.panel.height_m)
        if h is not None and (best is None or h.distance < best.hit.distance):
            best = PanelTarget(pp.panel.id, pp.layout.control_at(h.u, h.v), h)
    return best


class EdgeDetector:
    """Turns level states into press events (rising edges), per hand and action."""

    def __init__(self) -> None:
        self._prev: dict[tuple[int, str], bool] = {}

    def rising(self, hand: int, action: str, pressed: bool) -> bool:
        key = (hand, action)
        was = self._prev.get(key, False)
        self._prev[key] = pressed
        return pressed and not was

    def falling(self, hand: int, action: str, pressed: bool) -> bool:
        key = (hand, action)
        was = self._prev.get(key, False)
        self._prev[key] = pressed
        return was and not pressed


def intent_for(
    action: str, scene: ImmersiveScene, placed: PlacedPanel | None, target: PanelTarget | None, hand: int
) -> Intent | None:
    """What pressing `action` while aiming at `target` means, per the scene's bindings."""
    panel = placed.panel if placed else None
    control = panel.controls[target.control] if (panel and target and target.control is not None) else None
    if control is not None and control.type == "readout":
        control = None  # readouts have no actions; fall back to panel/scene bindings
    binding = resolve_binding(action, control, panel, scene)
    if binding is None:
        return None
    if binding.bridge is not None:
        if binding.bridge == "none" or (binding.bridge == "move_panel" and panel is None):
            return None
        return BridgeIntent(binding.bridge, panel.id if panel else None, hand)
    if binding.call is None or control is None or target is None or target.control is None or placed is None:
        return None  # a command needs a control to act on
    args = dict(binding.call.args)
    if control.type == "slider" and control.attribute:
        frac = placed.layout.fraction_in(target.control, target.hit.u)
        value = control.min + frac * (control.max - control.min)
        args[control.attribute] = (
            round(value) if float(control.min).is_integer() and float(control.max).is_integer() else value
        )
    return CommandIntent(control.entity_id, binding.call.command, args, placed.panel.id, target.control)


@dataclass
class PanelMover:
    """Grab-to-move: the panel keeps its pose relative to the grabbing hand's aim until release."""

    panel_id: str
    hand: int
    relative: Pose = field(default_factory=Pose)

    @staticmethod
    def start(panel_id: str, hand: int, aim: Pose, panel_pose: Pose) -> PanelMover:
        inv = Pose((0.0, 0.0, 0.0), quat_conj(aim.orientation))
        local_pos = aim.inverse_transform(panel_pose.position)
        rel = Pose(local_pos, quat_mul(inv.orientation, panel_pose.orientation))
        return PanelMover(panel_id, hand, rel)

    def update(self, aim: Pose) -> Pose:
        return aim.compose(self.relative)
