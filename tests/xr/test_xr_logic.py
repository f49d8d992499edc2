"""Unit tests for the bridge's runtime-independent logic (no OpenXR, no Vulkan)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.core import BridgeCore, HandInput
from qilu_hub.xr_bridge.geometry import Pose, aim_ray, ray_quad, rotate, yaw_quat
from qilu_hub.xr_bridge.layout import layout_panel
from qilu_hub.xr_bridge.mapping import BridgeIntent, CommandIntent, EdgeDetector, PanelMover, PlacedPanel, pick
from qilu_hub.xr_bridge.placement import PlacementStore
from qilu_hub.xr_bridge.render import OFF, OFFLINE_BG, ON, render_panel
from qilu_hub.xr_bridge.stream import StreamEvent
from qilu_hub.xr_bridge.view import ViewDiff, build_view

SCENE = """\
version: 1
immersive_scenes:
  - name: room
    panels:
      - id: lights
        title: Lights
        placement: {relative_to: stage, offset: [0.0, 1.5, -1.0]}
        size: {width: 0.6, height: 0.4}
        resolution: 500
        layout: {type: grid, columns: 2}
        controls:
          - {type: toggle, entity: light.a, label: A}
          - type: slider
            entity: light.a
            attribute: brightness
            min: 0
            max: 255
            bindings: {select: {command: turn_on, args: {transition: 1}}}
          - {type: button, entity: light.b, bindings: {select: turn_off}}
          - {type: readout, entity: sensor.t}
      - id: anchored
        placement: {relative_to: anchor, ref: desk, offset: [0, 0, 0]}
        controls:
          - {type: toggle, entity: light.b}
"""


def scene() -> Any:
    return parse_scene_text(SCENE).immersive()


def q_close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


def test_rotation_and_compose() -> None:
    q = yaw_quat(90)
    assert q_close(rotate(q, (0.0, 0.0, -1.0)), (-1.0, 0.0, 0.0))  # +90 deg yaw turns forward (-z) to -x
    parent = Pose((1.0, 0.0, 0.0), q)
    child = parent.compose(Pose((0.0, 0.0, -2.0)))
    assert q_close(child.position, (-1.0, 0.0, 0.0))
    assert q_close(parent.inverse_transform(child.position), (0.0, 0.0, -2.0))


def test_ray_quad_hits_centre_corners_and_misses() -> None:
    quad = Pose((0.0, 1.5, -1.0))
    hit = ray_quad((0.0, 1.5, 0.0), (0.0, 0.0, -1.0), quad, 0.6, 0.4)
    assert hit is not None and math.isclose(hit.distance, 1.0) and q_close((hit.u, hit.v), (0.5, 0.5))
    top_left = ray_quad((-0.29, 1.69, 0.0), (0.0, 0.0, -1.0), quad, 0.6, 0.4)
    assert top_left is not None and top_left.u < 0.05 and top_left.v < 0.05
    assert ray_quad((0.5, 1.5, 0.0), (0.0, 0.0, -1.0), quad, 0.6, 0.4) is None  # beside
    assert ray_quad((0.0, 1.5, 0.0), (0.0, 0.0, 1.0), quad, 0.6, 0.4) is None  # pointing away
    assert ray_quad((0.0, 1.5, 0.0), (1.0, 0.0, 0.0), quad, 0.6, 0.4) is None  # parallel
    turned = Pose((0.0, 1.5, -1.0), yaw_quat(60))
    assert ray_quad((0.0, 1.5, 0.0), (0.0, 0.0, -1.0), turned, 0.6, 0.4) is not None


def test_aim_ray_points_down_minus_z() -> None:
    origin, d = aim_ray(Pose((1.0, 2.0, 3.0), yaw_quat(180)))
    assert origin == (1.0, 2.0, 3.0) and q_close(d, (0.0, 0.0, 1.0))


def test_grid_layout_and_control_lookup() -> None:
    panel = scene().panels[0]
    lay = layout_panel(panel)
    assert (lay.width, lay.height) == (300, 200)
    assert len(lay.controls) == 4
    for i in range(4):
        assert lay.control_at(*lay.centre_uv(i)) == i
    assert lay.control_at(0.5, 0.01) is None  # the title bar
    x0, _, x1, _ = lay.controls[1]
    assert lay.fraction_in(1, x0 / lay.width) == 0.0 and lay.fraction_in(1, x1 / lay.width) == 1.0


def _core(store: PlacementStore | None = None) -> tuple[BridgeCore, list[tuple[Any, ...]]]:
    sent: list[tuple[Any, ...]] = []
    core = BridgeCore(scene(), store or PlacementStore(None), lambda *a: sent.append(a))
    core.apply_stream(
        [
            StreamEvent(
                "snapshot",
                {
                    "light.a": {"v": "off", "a": {"brightness": 0}},
                    "light.b": {"v": "on", "a": {}},
                    "sensor.t": {"v": 21.5, "a": {"unit_of_measurement": "°C"}},
                },
            ),
            StreamEvent("online"),
        ]
    )
    return core, sent


def _aim_at(core: BridgeCore, panel_id: str, control: int, back: float = 0.5) -> Pose:
    pp = core.placed[panel_id]
    u, v = pp.layout.centre_uv(control)
    local = ((u - 0.5) * pp.panel.width_m, (0.5 - v) * pp.panel.height_m, back)
    return pp.pose.compose(Pose(local))


def test_select_on_toggle_sends_toggle_and_marks_pending_until_result() -> None:
    core, sent = _core()
    aim = _aim_at(core, "lights", 0)
    assert core.input({1: HandInput(aim, {"select": False})}) == []
    intents = core.input({1: HandInput(aim, {"select": True})})
    assert intents == [CommandIntent("light.a", "toggle", {}, "lights", 0)]
    assert core.input({1: HandInput(aim, {"select": True})}) == []  # held: no repeat
    token, entity, command, args = sent[0]
    assert (entity, command, args) == ("light.a", "toggle", {})
    assert core.views()["lights"].controls[0].status == "pending"
    core.apply_stream(
        [
            StreamEvent("delta", {"light.a": {"v": "on", "a": {"brightness": 255}}}),
            StreamEvent("result", token=token, ok=True),
        ]
    )
    c0 = core.views()["lights"].controls[0]
    assert (c0.text, c0.on, c0.status) == ("on", True, "ok")


def test_slider_and_button_bindings() -> None:
    core, sent = _core()
    pp = core.placed["lights"]
    x0, y0, x1, y1 = pp.layout.controls[1]
    u = (x0 + 0.75 * (x1 - x0)) / pp.layout.width
    v = (y0 + y1) / 2 / pp.layout.height
    aim = pp.pose.compose(Pose(((u - 0.5) * 0.6, (0.5 - v) * 0.4, 0.5)))
    core.input({0: HandInput(aim, {"select": True})})
    _, entity, command, args = sent[-1]
    assert (entity, command, args["transition"]) == ("light.a", "turn_on", 1)
    assert abs(args["brightness"] - 191) <= 2
    core.input({0: HandInput(aim, {"select": False})})
    core.input({0: HandInput(_aim_at(core, "lights", 2), {"select": True})})
    assert sent[-1][1:3] == ("light.b", "turn_off")


def test_failed_command_shows_error_until_fresh_state() -> None:
    core, sent = _core()
    core.input({1: HandInput(_aim_at(core, "lights", 0), {"select": True})})
    core.apply_stream([StreamEvent("result", token=sent[0][0], ok=False, error="not_supported: nope")])
    c0 = core.views()["lights"].controls[0]
    assert c0.status == "error" and "nope" in c0.text
    core.apply_stream([StreamEvent("delta", {"light.a": {"v": "off", "a": {}}})])
    assert core.views()["lights"].controls[0].status == "ok"


def test_offline_marks_panels_and_refuses_commands() -> None:
    core, sent = _core()
    core.apply_stream([StreamEvent("offline")])
    assert all(v.offline for v in core.views().values())
    core.input({1: HandInput(_aim_at(core, "lights", 0), {"select": True})})
    assert sent == []
    assert core.views()["lights"].controls[0].status == "error"


def test_only_changed_panels_are_dirty() -> None:
    core, _ = _core()
    assert sorted(core.dirty()) == ["anchored", "lights"]
    for pid in core.dirty():
        core.committed(pid)
    assert core.dirty() == []
    core.apply_stream([StreamEvent("delta", {"light.a": {"v": "on", "a": {}}})])
    assert core.dirty() == ["lights"]  # light.a is only on the first panel
    core.committed("lights")
    core.input({1: HandInput(_aim_at(core, "anchored", 0), {})})  # hover highlights
    assert core.dirty() == ["anchored"]


def test_menu_hides_panels_and_grab_moves_and_persists(tmp_path: Path) -> None:
    store = PlacementStore.load(tmp_path / "p.json")
    core, _ = _core(store)
    aim = _aim_at(core, "lights", 0)
    intents = core.input({1: HandInput(aim, {"grab": True})})
    assert intents == [BridgeIntent("move_panel", "lights", 1)]
    moved_aim = Pose((aim.position[0] + 0.3, aim.position[1], aim.position[2]), aim.orientation)
    core.input({1: HandInput(moved_aim, {"grab": True})})
    core.input({1: HandInput(moved_aim, {"grab": False})})
    assert math.isclose(core.placed["lights"].pose.position[0], 0.3, abs_tol=1e-6)
    again = PlacementStore.load(tmp_path / "p.json")
    core2 = BridgeCore(scene(), again, lambda *a: None)
    assert math.isclose(core2.placed["lights"].pose.position[0], 0.3, abs_tol=1e-6)
    assert "desk" in again.anchors  # anchor placements are persisted too
    core.input({1: HandInput(None, {"menu": True})})
    assert not any(p.visible for p in core.placed.values())


def test_runtime_anchor_pose_overrides_stored_anchor() -> None:
    core, _ = _core()
    core.anchor_poses["desk"] = Pose((2.0, 1.0, -3.0), yaw_quat(90))
    core.update_poses()
    assert q_close(core.placed["anchored"].pose.position, (2.0, 1.0, -3.0))


def test_render_colours_follow_state() -> None:
    core, _ = _core()
    views = core.views()
    lay = core.placed["lights"].layout
    img = render_panel(views["lights"], lay)
    x0, y0, x1, y1 = lay.controls[0]
    assert img.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == OFF
    core.apply_stream([StreamEvent("delta", {"light.a": {"v": "on", "a": {"brightness": 255}}})])
    img = render_panel(core.views()["lights"], lay)
    assert img.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == ON
    core.apply_stream([StreamEvent("offline")])
    img = render_panel(core.views()["lights"], lay)
    assert img.getpixel((lay.width - 2, lay.height - 2)) == OFFLINE_BG


def test_view_diff_and_unavailable_entities() -> None:
    panel = scene().panels[0]
    v1 = build_view(panel, {}, online=True)
    assert all(c.status == "unavailable" for c in v1.controls)
    diff = ViewDiff()
    assert diff.changed({"lights": v1}) == ["lights"]
    diff.commit("lights", v1)
    assert diff.changed({"lights": build_view(panel, {}, online=True)}) == []


def test_edges() -> None:
    e = EdgeDetector()
    assert [e.rising(0, "select", p) for p in (False, True, True, False, True)] == [
        False,
        True,
        False,
        False,
        True,
    ]


def test_mover_keeps_relative_pose() -> None:
    aim = Pose((0.0, 1.0, 0.0), yaw_quat(0))
    m = PanelMover.start("p", 0, aim, Pose((0.0, 1.0, -1.0)))
    turned = m.update(Pose((0.0, 1.0, 0.0), yaw_quat(90)))
    assert q_close(turned.position, (-1.0, 1.0, 0.0))


def test_corrupt_placement_file_is_ignored(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text("{not json")
    assert PlacementStore.load(p).panels == {}


@pytest.mark.parametrize("entity,value,on", [("light.a", "on", True), ("light.a", "off", False)])
def test_toggle_view(entity: str, value: str, on: bool) -> None:
    core, _ = _core()
    core.apply_stream([StreamEvent("delta", {entity: {"v": value, "a": {}}})])
    assert core.views()["lights"].controls[0].on is on


def test_pick_rules_out_panels_cheaply_but_finds_the_same_panel_as_testing_every_one() -> None:
    """pick skips panels whose centre is farther from the ray than their half-diagonal; over random walls of
    panels and random rays it must find exactly the nearest hit that intersecting every panel finds."""
    rng = random.Random(3)  # a fixed sample: the same walls and rays on every run
    panels = scene().panels
    for _ in range(60):
        placed = [
            PlacedPanel(p, layout_panel(p), Pose((rng.uniform(-1, 1), rng.uniform(0.5, 2), rng.uniform(-2, -0.5)),
                                                 yaw_quat(rng.uniform(-60, 60))))
            for p in panels
        ]
        for _ in range(20):
            target = rng.choice(placed).pose.position
            aim_from = (rng.uniform(-0.5, 0.5), rng.uniform(1, 2), rng.uniform(0, 0.5))
            jitter = rng.uniform(-0.4, 0.4)
            d = (target[0] - aim_from[0] + jitter, target[1] - aim_from[1], target[2] - aim_from[2])
            yaw = math.degrees(math.atan2(-d[0], -d[2]))
            pitch = math.atan2(d[1], math.hypot(d[0], d[2]))
            qy = yaw_quat(yaw)
            qx = (math.sin(pitch / 2), 0.0, 0.0, math.cos(pitch / 2))
            q = (qy[3] * qx[0], qy[1] * qx[3], -qy[1] * qx[0], qy[3] * qx[3])  # yaw * pitch
            aim = Pose(aim_from, q)
            origin, direction = aim_ray(aim)
            hits = [(h.distance, pp.panel.id) for pp in placed
                    if (h := ray_quad(origin, direction, pp.pose, pp.panel.width_m, pp.panel.height_m))]
            got = pick(aim, placed)
            if not hits:
                assert got is None
            else:
                assert got is not None and got.panel_id == min(hits)[1]

