"""Spatial-anchor glue with the runtime calls stubbed: headless Monado offers no anchor extension, so this
checks the EXT (spatial entities: async context, snapshots), MSFT (synchronous) and FB (asynchronous,
event-completed) paths and the stage fallback."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import xr

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.core import BridgeCore
from qilu_hub.xr_bridge.geometry import Pose
from qilu_hub.xr_bridge.placement import PlacementStore
from qilu_hub.xr_bridge.runtime import XrBridge

SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: desk_panel
        placement: {relative_to: anchor, ref: desk, offset: [0, 0.2, 0]}
        controls:
          - {type: toggle, entity: light.a}
"""
ANCHOR_AT = xr.Posef(orientation=xr.Quaternionf(0, 0, 0, 1), position=xr.Vector3f(1.0, 0.8, -2.0))
VALID = xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT


def _bridge(kind: str, tmp: Any) -> XrBridge:
    store = PlacementStore.load(tmp / "placements.json")
    core = BridgeCore(parse_scene_text(SCENE).immersive(), store, lambda *a: None)
    b = XrBridge(core, None)
    b.anchor_kind, b.session, b.base = kind, object(), xr.Space()  # null handle: never reaches a runtime
    return b


@pytest.fixture
def located(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        xr, "locate_space", lambda space, base, t: SimpleNamespace(location_flags=VALID, pose=ANCHOR_AT)
    )


def test_msft_anchor_places_panel_at_the_located_anchor(
    monkeypatch: pytest.MonkeyPatch, located: None, tmp_path: Any
) -> None:
    made: list[Any] = []

    def create(session: Any, info: Any) -> Any:
        made.append(info)
        return xr.SpatialAnchorMSFT()

    monkeypatch.setattr(xr, "create_spatial_anchor_msft", create)
    monkeypatch.setattr(xr, "create_spatial_anchor_space_msft", lambda s, info: "anchor-space")
    b = _bridge("msft", tmp_path)
    b._update_anchors(123)
    b._update_anchors(124)  # created once, located every frame
    assert len(made) == 1 and made[0].time == 123
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((1.0, 1.0, -2.0))
    assert "desk" in PlacementStore.load(tmp_path / "placements.json").anchors


def test_fb_anchor_completes_by_event(monkeypatch: pytest.MonkeyPatch, located: None, tmp_path: Any) -> None:
    monkeypatch.setattr(xr, "create_spatial_anchor_fb", lambda s, info: 77)
    b = _bridge("fb", tmp_path)
    b._update_anchors(1)
    b._update_anchors(2)  # still pending: not requested twice
    assert b._anchor_requests == {77: "desk"}
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((0.0, 0.2, 0.0))  # stored pose meanwhile
    b._on_fb_anchor(77, 0, "fb-space")
    b._update_anchors(3)
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((1.0, 1.0, -2.0))


def test_refused_anchor_falls_back_to_stage(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    def refuse(s: Any, info: Any) -> Any:
        raise xr.FeatureUnsupportedError()

    monkeypatch.setattr(xr, "create_spatial_anchor_msft", refuse)
    b = _bridge("msft", tmp_path)
    b.core.store.anchors["desk"] = Pose((0.5, 0.0, -1.0))
    b.core.update_poses()
    b._update_anchors(1)
    b._update_anchors(2)
    assert b._anchor_failed == {"desk"}
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((0.5, 0.2, -1.0))


# ---- XR_EXT_spatial_anchor (spatial entities): no runtime available offers it, so the calls are stubbed


@pytest.fixture
def ext_runtime(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from qilu_hub.xr_bridge import ext_anchors

    log: dict[str, Any] = {
        "ready_after": 2,
        "polls": 0,
        "anchors": [],
        "snapshots": [],
        "destroyed": [],
        "located": {},
        "future_result": 0,
    }

    def ready(instance: Any, future: Any) -> bool:
        log["polls"] += 1
        return bool(log["polls"] >= log["ready_after"])

    def create_anchor(ctx: Any, info: Any) -> Any:
        log["anchors"].append((ctx, info))
        return xr.SpatialEntityIdEXT(40 + len(log["anchors"])), xr.SpatialEntityEXT()

    monkeypatch.setattr(xr, "create_spatial_context_async_ext", lambda s, info: "future")
    monkeypatch.setattr(ext_anchors, "future_ready", ready)
    monkeypatch.setattr(
        xr,
        "create_spatial_context_complete_ext",
        lambda s, f: SimpleNamespace(future_result=log["future_result"], spatial_context="ctx"),
    )
    monkeypatch.setattr(xr, "create_spatial_anchor_ext", create_anchor)
    monkeypatch.setattr(
        xr, "create_spatial_update_snapshot_ext", lambda ctx, info: log["snapshots"].append(info) or "snap"
    )
    monkeypatch.setattr(ext_anchors, "query_anchor_poses", lambda snap: dict(log["located"]))
    monkeypatch.setattr(xr, "destroy_spatial_snapshot_ext", lambda snap: log["destroyed"].append(snap))
    return log


def test_ext_anchor_context_then_anchor_then_located_pose(ext_runtime: dict[str, Any], tmp_path: Any) -> None:
    b = _bridge("ext", tmp_path)
    b.core.store.anchors["desk"] = Pose((0.5, 0.0, -1.0))
    b.core.update_poses()
    b._update_anchors(10)  # context requested
    b._update_anchors(11)  # future still pending
    assert ext_runtime["anchors"] == [] and b.core.placed["desk_panel"].pose.position == pytest.approx((0.5, 0.2, -1.0))
    ext_runtime["located"] = {41: Pose((1.0, 0.8, -2.0))}
    b._update_anchors(12)  # ready: context completed, anchor created at the stored pose, then located
    assert len(ext_runtime["anchors"]) == 1
    ctx, info = ext_runtime["anchors"][0]
    assert ctx == "ctx" and info.time == 12 and info.pose.position.x == pytest.approx(0.5)
    snap = ext_runtime["snapshots"][0]
    assert (
        snap.entity_count == 1
        and snap.time == 12
        and list(snap.component_types) == [xr.SpatialComponentTypeEXT.ANCHOR.value]
    )
    assert ext_runtime["destroyed"] == ["snap"]
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((1.0, 1.0, -2.0))
    # the runtime refines the anchor: the panel follows; the anchor is not created again
    ext_runtime["located"] = {41: Pose((1.1, 0.8, -2.0))}
    b._update_anchors(13)
    assert len(ext_runtime["anchors"]) == 1
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((1.1, 1.0, -2.0))
    # not tracked right now (left out of the snapshot's tracked set): keep the last good pose
    ext_runtime["located"] = {}
    b._update_anchors(14)
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((1.1, 1.0, -2.0))


def test_ext_context_failure_falls_back_to_the_stored_stage_pose(ext_runtime: dict[str, Any], tmp_path: Any) -> None:
    ext_runtime["future_result"] = -1  # XR_ERROR_... from the async completion
    b = _bridge("ext", tmp_path)
    b.core.store.anchors["desk"] = Pose((0.5, 0.0, -1.0))
    b.core.update_poses()
    for t in range(5):
        b._update_anchors(t)
    assert b._anchor_failed == {"desk"} and ext_runtime["anchors"] == []
    assert b.core.placed["desk_panel"].pose.position == pytest.approx((0.5, 0.2, -1.0))


def test_ext_structures_are_built_as_the_spec_says() -> None:
    """The real pyopenxr structures handed to the runtime (no runtime needed to check their contents)."""
    from qilu_hub.xr_bridge import ext_anchors

    info, cfg = ext_anchors.context_create_info()
    assert info.capability_config_count == 1
    assert cfg.type == xr.StructureType.SPATIAL_CAPABILITY_CONFIGURATION_ANCHOR_EXT.value  # pyopenxr leaves 0
    assert cfg.enabled_component_count == 1
    snap = ext_anchors.snapshot_info([xr.SpatialEntityEXT(), xr.SpatialEntityEXT()], xr.Space(), 99)
    assert (snap.entity_count, snap.component_type_count, snap.time) == (2, 1, 99)
    assert ext_anchors.offered({"XR_EXT_spatial_entity", "XR_EXT_spatial_anchor", "XR_EXT_future"})
    assert not ext_anchors.offered({"XR_EXT_spatial_anchor"})
