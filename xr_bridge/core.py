"""The bridge's runtime-independent heart: scene + hub state + XR input -> commands and panel images.

The OpenXR glue (runtime.py) calls, once per frame: `apply_stream(events)`, `input(...)` when focused, then
`dirty()` -> render -> upload -> `committed()`. Everything here is plain Python and unit-tested."""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from qilu_hub.scenes.model import ImmersiveScene

from .geometry import Pose, quat_conj, quat_mul
from .layout import layout_panel
from .mapping import (
    BridgeIntent,
    CommandIntent,
    EdgeDetector,
    Intent,
    PanelMover,
    PanelTarget,
    PlacedPanel,
    intent_for,
    pick,
)
from .placement import PlacementStore, local_pose, reference_key, reference_pose
from .render import render_bytes
from .stream import StreamEvent
from .view import EntityState, PanelView, ViewDiff, build_view

_LOG = logging.getLogger(__name__)
ACTION_NAMES = ("select", "grab", "menu")


@dataclass
class HandInput:
    aim: Pose | None
    pressed: Mapping[str, bool] = field(default_factory=dict)


def _valid_pose(raw: Any) -> Pose | None:
    """A pose from the stream with finite numbers and a non-zero quaternion (normalised), else None."""
    try:
        p = Pose.from_dict(raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    values = (*p.position, *p.orientation)
    if not all(math.isfinite(v) and abs(v) < 1e6 for v in values):
        return None
    n = math.sqrt(sum(c * c for c in p.orientation))
    if n < 1e-6:
        return None
    return Pose(p.position, (p.orientation[0] / n, p.orientation[1] / n, p.orientation[2] / n, p.orientation[3] / n))


class Trace:
    """Optional JSON-lines event log (tests and benchmarks read it; off by default)."""

    def __init__(self, sink: IO[str] | None = None) -> None:
        self._sink = sink
        self.t0 = time.perf_counter()

    def __bool__(self) -> bool:
        return self._sink is not None

    def __call__(self, event: str, **data: Any) -> None:
        if self._sink is None:
            return
        data["ev"] = event
        data["t"] = round(time.perf_counter() - self.t0, 6)
        self._sink.write(json.dumps(data, default=str) + "\n")
        self._sink.flush()


class BridgeCore:
    def __init__(
        self,
        scene: ImmersiveScene,
        store: PlacementStore,
        send_call: Callable[[Any, str, str, dict[str, Any]], None],
        trace: Trace | None = None,
        snapshot_check: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        self.scene = scene
        self.store = store
        self.send_call = send_call
        self.trace = trace or Trace()
        self.snapshot_check = snapshot_check
        self.fatal: tuple[int, str] | None = None  # (exit code, message) when the bridge must stop
        self.states: dict[str, EntityState] = {}
        self.online = False
        self.menu_hidden = False
        self.placed: dict[str, PlacedPanel] = {}
        self.anchor_poses: dict[str, Pose] = {}  # runtime-located spatial anchors, by name (override the store)
        self.hub_poses: dict[str, Pose] = {}  # "device:ID" / "area:ID" -> pose from the hub's stream
        self._poses_replace = True  # the first poses message after a snapshot is the full set
        for p in scene.panels:
            self.placed[p.id] = PlacedPanel(p, layout_panel(p), Pose())
        self._edges = EdgeDetector()
        self._pending: dict[str, set[int]] = {}
        self._errors: dict[str, dict[int, str]] = {}
        self._hover: dict[str, int | None] = {}
        self._movers: dict[int, PanelMover] = {}
        self._tokens = itertools.count(1)
        self._calls: dict[int, CommandIntent] = {}
        self._diff = ViewDiff()
        self._views: dict[str, PanelView] = {}
        # views are rebuilt only for panels touched since the last frame (None = all): with 100 panels,
        # rebuilding every view every frame cost more than everything else the bridge does when idle
        self._stale: set[str] | None = None
        self._uncommitted: set[str] = set()
        self._by_entity: dict[str, set[str]] = {}
        for p in scene.panels:
            for eid in p.entities:
                self._by_entity.setdefault(eid, set()).add(p.id)
        self.frame = 0
        self.state_seen_frame: dict[str, int] = {}  # entity -> frame its latest state arrived (latency bench)
        self.update_poses()

    # ---- hub stream
    def apply_stream(self, events: Iterable[StreamEvent]) -> None:
        for ev in events:
            if ev.kind == "snapshot":
                self.states = {k: EntityState.from_stream(v) for k, v in ev.states.items()}
                self._stale = None
                self._poses_replace = True
                self._errors.clear()
                self.trace("snapshot", entities=len(self.states))
                problem = self.snapshot_check(ev.states) if self.snapshot_check else None
                if problem:
                    self.fatal = (3, problem)
            elif ev.kind == "delta":
                for eid, st in ev.states.items():
                    self.states[eid] = EntityState.from_stream(st)
                    self.state_seen_frame[eid] = self.frame
                    self._touch(*self._by_entity.get(eid, ()))
                    for pid, p in self.placed.items():  # a fresh state clears a stale error on its controls
                        errs = self._errors.get(pid)
                        if errs:
                            for i, c in enumerate(p.panel.controls):
                                if c.entity_id == eid:
                                    errs.pop(i, None)
                    self.trace("state", entity=eid, value=st.get("v"), frame=self.frame)
                for eid in ev.removed:
                    self.states.pop(eid, None)
                    self._touch(*self._by_entity.get(eid, ()))
            elif ev.kind == "poses":
                self._apply_poses(ev.poses)
            elif ev.kind == "online":
                self.online = True
                self._stale = None
                self.trace("online")
            elif ev.kind in ("offline", "auth_failed"):
                if self.online:
                    self.trace("offline")
                self.online = False
                self._pending.clear()
                self._stale = None
            elif ev.kind == "result":
                intent = self._calls.pop(ev.token, None)
                if intent is None:
                    continue
                self._pending.get(intent.panel_id, set()).discard(intent.control)
                self._touch(intent.panel_id)
                if not ev.ok:
                    self._errors.setdefault(intent.panel_id, {})[intent.control] = ev.error
                self.trace("result", panel=intent.panel_id, control=intent.control, ok=ev.ok, error=ev.error)

    # ---- placement
    def _apply_poses(self, poses: Mapping[str, Any]) -> None:
        if self._poses_replace:  # the full set: every device and area the token sees, posed or not
            self._check_references(poses.keys())
        fresh = {} if self._poses_replace else dict(self.hub_poses)
        self._poses_replace = False
        for key, raw in poses.items():
            if raw is None:
                fresh.pop(key, None)
                continue
            pose = _valid_pose(raw)
            if pose is None:  # a malformed pose costs that entry, not the bridge (the runtime rejects NaNs)
                _LOG.warning("ignoring malformed pose for %s: %r", key, raw)
                fresh.pop(key, None)
            else:
                fresh[key] = pose
        if fresh != self.hub_poses:
            self.hub_poses = fresh
            self.trace("poses", poses={k: p.to_dict() for k, p in fresh.items()})
            self.update_poses()

    def _check_references(self, known: Iterable[str]) -> None:
        """A panel placed on a device or area the hub does not list would sit at the stage origin: stop instead
        (the scene's error, exit code 3, as for an unknown entity)."""
        have = set(known)
        for pp in self.placed.values():
            pl = pp.panel.placement
            if pl.relative_to in ("device", "area") and reference_key(pp.panel) not in have:
                hint = " (`qilu-hub devices` lists ids)" if pl.relative_to == "device" else ""
                self.fatal = (3, f"panel {pp.panel.id!r}: the hub has no {pl.relative_to} {pl.ref!r} that this "
                                 f"token may see{hint}")
                return

    def update_poses(self) -> None:
        for pid, pp in self.placed.items():
            if pid in {m.panel_id for m in self._movers.values()}:
                continue  # a grabbed panel follows the hand instead
            pl = pp.panel.placement
            base = (self.anchor_poses.get(str(pl.ref)) if pl.relative_to == "anchor" else None) or reference_pose(
                pp.panel, self.store, self.hub_poses
            )
            pp.pose = base.compose(local_pose(self.scene.name, pp.panel, self.store))
            pp.visible = not self.menu_hidden

    # ---- input
    def input(self, hands: Mapping[int, HandInput]) -> list[Intent]:
        """One frame of XR input (only while focused). Returns the intents acted on."""
        intents: list[Intent] = []
        hover: dict[str, int | None] = {}
        for hand, hi in hands.items():
            target: PanelTarget | None = pick(hi.aim, self.placed.values()) if hi.aim is not None else None
            if target is not None and target.control is not None:
                hover[target.panel_id] = target.control
            for action in ACTION_NAMES:
                pressed = bool(hi.pressed.get(action))
                if action == "grab" and hand in self._movers and self._edges.falling(hand, action, pressed):
                    self._end_move(hand, hi.aim)
                    continue
                if not self._edges.rising(hand, action, pressed):
                    continue
                placed = self.placed.get(target.panel_id) if target else None
                intent = intent_for(action, self.scene, placed, target, hand)
                if intent is not None:
                    intents.append(intent)
                    self._act(intent, hi.aim)
            mover = self._movers.get(hand)
            if mover is not None and hi.aim is not None:
                self.placed[mover.panel_id].pose = mover.update(hi.aim)
        if hover != self._hover:
            self._touch(*(pid for pid in set(hover) | set(self._hover) if hover.get(pid) != self._hover.get(pid)))
            self._hover = hover
        return intents

    def _act(self, intent: Intent, aim: Pose | None) -> None:
        self.trace("intent", **intent.__dict__)
        if isinstance(intent, CommandIntent):
            self._touch(intent.panel_id)
            if not self.online:
                self._errors.setdefault(intent.panel_id, {})[intent.control] = "offline"
                return
            token = next(self._tokens)
            self._calls[token] = intent
            self._pending.setdefault(intent.panel_id, set()).add(intent.control)
            self.send_call(token, intent.entity_id, intent.command, intent.args)
        elif isinstance(intent, BridgeIntent):
            if intent.action == "toggle_menu":
                self.menu_hidden = not self.menu_hidden
                self.update_poses()
            elif intent.action == "move_panel" and intent.panel_id and aim is not None:
                self._movers[intent.hand] = PanelMover.start(
                    intent.panel_id, intent.hand, aim, self.placed[intent.panel_id].pose
                )

    def _end_move(self, hand: int, aim: Pose | None) -> None:
        mover = self._movers.pop(hand)
        pp = self.placed[mover.panel_id]
        if aim is not None:
            pp.pose = mover.update(aim)
        pl = pp.panel.placement
        base = (self.anchor_poses.get(str(pl.ref)) if pl.relative_to == "anchor" else None) or reference_pose(
            pp.panel, self.store, self.hub_poses
        )
        # persist the panel relative to its reference, so it stays put next run
        inv_pos = base.inverse_transform(pp.pose.position)
        self.store.panels[f"{self.scene.name}/{pp.panel.id}"] = Pose(
            inv_pos, quat_mul(quat_conj(base.orientation), pp.pose.orientation)
        )
        self.store.save()
        self.trace("moved", panel=pp.panel.id, pose=pp.pose.to_dict())

    # ---- panels
    def _touch(self, *panel_ids: str) -> None:
        if self._stale is not None:
            self._stale.update(panel_ids)

    def _view(self, pid: str) -> PanelView:
        pp = self.placed[pid]
        return build_view(
            pp.panel,
            self.states,
            online=self.online,
            pending=frozenset(self._pending.get(pid, ())),
            errors=self._errors.get(pid),
            hovered=self._hover.get(pid),
        )

    def views(self) -> dict[str, PanelView]:
        """Every panel's current view (rebuilt from scratch; tests and tools)."""
        self._views = {
            pid: build_view(
                pp.panel,
                self.states,
                online=self.online,
                pending=frozenset(self._pending.get(pid, ())),
                errors=self._errors.get(pid),
                hovered=self._hover.get(pid),
            )
            for pid, pp in self.placed.items()
        }
        return self._views

    def dirty(self) -> list[str]:
        """Panels whose view changed since they were last uploaded (only touched panels are rebuilt)."""
        stale = self.placed.keys() if self._stale is None else self._stale
        rebuilt = {pid: self._view(pid) for pid in stale}
        self._views.update(rebuilt)
        changed = set(self._diff.changed(rebuilt))
        self._uncommitted |= changed
        self._uncommitted -= set(rebuilt) - changed
        self._stale = set()
        return [pid for pid in self.placed if pid in self._uncommitted]

    def render(self, panel_id: str) -> bytes:
        return render_bytes(self._views[panel_id], self.placed[panel_id].layout)

    def current_view(self, panel_id: str) -> PanelView:
        """What the panel should show now (as of the last :meth:`dirty`)."""
        return self._views[panel_id]

    def shown_view(self, panel_id: str) -> PanelView | None:
        """The view the panel's image shows (as last :meth:`committed`; None: none yet)."""
        return self._diff.last(panel_id)

    def committed(self, panel_id: str, view: PanelView | None = None, *, rect: tuple[int, int, int, int] | None
                  = None, uploaded: int = 0) -> None:
        """Called once the panel's new image, of ``view`` (default: the current one), was released to its
        swapchain (it shows from this frame on); ``rect`` is the rectangle that changed (None: no pixel did)
        and ``uploaded`` the bytes copied into the swapchain image for it (traced for tests)."""
        view = self._views[panel_id] if view is None else view
        self._diff.commit(panel_id, view)
        self._uncommitted.discard(panel_id)
        if self.trace:
            self.trace(
                "submit",
                panel=panel_id,
                frame=self.frame,
                offline=view.offline,
                controls=[[c.text, c.status, c.on, c.hovered] for c in view.controls],
                rect=rect,
                uploaded=uploaded,
            )

    def invalidate(self) -> None:
        """Force every panel to redraw (e.g. after swapchains were recreated)."""
        self._diff.forget()
        self._stale = None
