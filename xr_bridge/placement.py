"""Where panels are: placement references (device / area / anchor / stage) and the small JSON file that
persists anchor poses, user-moved panels and known device/area poses between runs."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qilu_hub.scenes.model import Panel

from .geometry import Pose, yaw_quat

_LOG = logging.getLogger(__name__)


@dataclass
class PlacementStore:
    """JSON file: {"anchors": {name: pose}, "references": {"device:ID"|"area:ID": pose},
    "panels": {"scene/panel": {"pose": pose}}}; poses are relative to the panel's
    reference (stage for anchors)."""

    path: Path | None
    anchors: dict[str, Pose] = field(default_factory=dict)
    references: dict[str, Pose] = field(default_factory=dict)
    panels: dict[str, Pose] = field(default_factory=dict)

    @staticmethod
    def load(path: str | Path | None) -> PlacementStore:
        store = PlacementStore(Path(path) if path else None)
        if store.path is None or not store.path.exists():
            return store
        try:
            raw = json.loads(store.path.read_text(encoding="utf-8"))
            store.anchors = {k: Pose.from_dict(v) for k, v in (raw.get("anchors") or {}).items()}
            store.references = {k: Pose.from_dict(v) for k, v in (raw.get("references") or {}).items()}
            store.panels = {k: Pose.from_dict(v["pose"]) for k, v in (raw.get("panels") or {}).items()}
        except (OSError, ValueError, KeyError, TypeError) as e:
            # a corrupt placement file must not stop the bridge; scene defaults apply
            _LOG.warning("ignoring unreadable placement file %s: %s", store.path, e)
        return store

    def save(self) -> None:
        if self.path is None:
            return
        data: dict[str, Any] = {
            "anchors": {k: v.to_dict() for k, v in self.anchors.items()},
            "references": {k: v.to_dict() for k, v in self.references.items()},
            "panels": {k: {"pose": v.to_dict()} for k, v in self.panels.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename so a crash never leaves half a file
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".placement-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)


def reference_key(panel: Panel) -> str:
    pl = panel.placement
    return "stage" if pl.relative_to == "stage" else f"{pl.relative_to}:{pl.ref}"


def reference_pose(panel: Panel, store: PlacementStore, hub_poses: Mapping[str, Pose] | None = None) -> Pose:
    """The reference frame's pose in stage space (without runtime anchors; the glue overrides anchors).

    device/area: the placements file's entry if there is one (a local override, e.g. a calibration for this
    headset), else the pose the hub's stream reported, else the stage origin."""
    pl = panel.placement
    if pl.relative_to == "stage":
        return Pose()
    if pl.relative_to == "anchor":
        return store.anchors.setdefault(str(pl.ref), Pose())
    key = reference_key(panel)
    override = store.references.get(key)
    if override is not None:
        return override
    return (hub_poses or {}).get(key) or Pose()


def local_pose(scene_name: str, panel: Panel, store: PlacementStore) -> Pose:
    """The panel's pose relative to its reference: a user move (persisted) wins over the scene's offset."""
    moved = store.panels.get(f"{scene_name}/{panel.id}")
    if moved is not None:
        return moved
    return Pose(panel.placement.offset, yaw_quat(panel.placement.yaw_deg))
