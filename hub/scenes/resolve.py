"""An immersive scene resolved for one client: what the scene API (``/api/xr/scenes/{id}``) sends to WebXR and engine
clients, so that none of them re-implements layout, binding inheritance or placement.

Each panel carries its texture layout (``layout.py``, the one the OpenXR bridge draws with), each control its
resolved bindings (control > panel > scene > type default, as ``model.resolve_binding``), and each panel its
placement: the reference frame's pose from the registry (device or area), the panel's pose relative to it, and the
two composed in the home frame. Controls on entities the token may not see are left out; a panel left with no
control is left out too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from .geometry import Pose, yaw_quat
from .layout import layout_panel
from .model import ACTIONS, ActionBinding, ImmersiveScene, Panel, resolve_binding

# The registry's pose (qilu_hub.model.Pose) as a plain dict {"x","y","z","qx","qy","qz","qw"}; None when unplaced.
PoseDict = Mapping[str, Any]
PoseLookup = Callable[[str, str], PoseDict | None]  # ("device" | "area", id) -> pose


def binding_dict(binding: ActionBinding | None) -> dict[str, Any] | None:
    if binding is None:
        return None
    if binding.bridge is not None:
        return {"bridge": binding.bridge}
    assert binding.call is not None
    return {"call": {"command": binding.call.command, "args": dict(binding.call.args)}}


def _pose_of(d: PoseDict) -> Pose:
    return Pose.from_dict({k: float(d[k]) for k in ("x", "y", "z", "qx", "qy", "qz", "qw") if k in d})


def reference_of(panel: Panel, poses: PoseLookup) -> dict[str, Any] | None:
    """The panel's reference pose in the home frame: stage is the home origin; an anchor lives only in a headset
    (None); a device or area is what the registry holds (None while it has no pose)."""
    pl = panel.placement
    if pl.relative_to == "stage":
        return Pose().to_dict()
    if pl.relative_to == "anchor" or pl.ref is None:
        return None
    found = poses(pl.relative_to, pl.ref)
    return _pose_of(found).to_dict() if found is not None else None


def local_pose(panel: Panel) -> Pose:
    return Pose(panel.placement.offset, yaw_quat(panel.placement.yaw_deg))


def resolve_panel(scene: ImmersiveScene, panel: Panel, poses: PoseLookup, can_see: Callable[[str], bool],
                  can_control: Callable[[str], bool]) -> dict[str, Any] | None:
    lay = layout_panel(panel)
    controls = []
    for index, control in enumerate(panel.controls):
        if not can_see(control.entity_id):
            continue
        bindings = {a: binding_dict(resolve_binding_for(a, scene, panel, index)) for a in ACTIONS}
        controls.append({
            "index": index, "type": control.type, "entity_id": control.entity_id, "label": control.label,
            "attribute": control.attribute, "min": control.min, "max": control.max,
            "rect": list(lay.controls[index]), "bindings": {a: b for a, b in bindings.items() if b is not None},
            "controllable": can_control(control.entity_id),
        })
    if not controls:
        return None
    pl = panel.placement
    reference = reference_of(panel, poses)
    local = local_pose(panel)
    composed = _pose_of(reference).compose(local).to_dict() if reference is not None else None
    return {
        "id": panel.id, "title": panel.title, "width_m": panel.width_m, "height_m": panel.height_m,
        "pixel_size": list(panel.pixel_size), "layout": panel.layout, "columns": panel.columns,
        "title_rect": list(lay.title), "controls": controls,
        "bindings": {a: b for a in ACTIONS if (b := binding_dict(resolve_binding_for(a, scene, panel, None)))},
        "placement": {"relative_to": pl.relative_to, "ref": pl.ref, "offset": list(pl.offset), "yaw_deg": pl.yaw_deg,
                      "reference": reference, "local": local.to_dict(), "pose": composed},
    }


def resolve_binding_for(action: str, scene: ImmersiveScene, panel: Panel, index: int | None) -> ActionBinding | None:
    control = panel.controls[index] if index is not None else None
    if control is not None and control.type == "readout":
        return None  # readouts have no actions (the bridge falls back to the panel's; the client does the same)
    return resolve_binding(action, control, panel, scene)


def resolve_scene(scene: ImmersiveScene, source: str, poses: PoseLookup, can_see: Callable[[str], bool],
                  can_control: Callable[[str], bool]) -> dict[str, Any]:
    """The scene as a client draws it (without states: the caller adds those it may show)."""
    panels = [p for panel in scene.panels if (p := resolve_panel(scene, panel, poses, can_see, can_control))]
    body: dict[str, Any] = {
        "id": scene.name, "description": scene.description, "source": source, "panels": panels,
        "bindings": {a: b for a in ACTIONS if (b := binding_dict(scene.bindings.get(a)))},
        "entities": list(dict.fromkeys(c["entity_id"] for p in panels for c in p["controls"])),
    }
    body["version"] = scene_version(body)
    return body


def scene_version(body: Mapping[str, Any]) -> str:
    """A short digest of everything but states: clients compare it to skip a redraw (and it is the REST ETag)."""
    raw = json.dumps({k: v for k, v in body.items() if k not in ("version", "states")}, sort_keys=True,
                     separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
