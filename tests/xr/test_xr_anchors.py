"""Spatial-anchor glue with the runtime calls stubbed: headless Monado offers no anchor extension, so this
checks the MSFT (synchronous) and FB (asynchronous, event-completed) paths and the stage fallback."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import xr

from hub.scenes import parse_scene_text
from xr_bridge.core import BridgeCore
from xr_bridge.geometry import Pose
from xr_bridge.placement import PlacementStore
from xr_bridge.runtime import XrBridge

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
