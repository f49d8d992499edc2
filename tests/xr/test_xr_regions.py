"""Partial panel updates, without a runtime: the rectangle render.dirty_rect names holds every pixel in which
two views' images differ, render.paint_region draws exactly the full image's pixels there, and
swapchains.ImageDamage brings every image of a cycling swapchain up to date from a full copy."""

from __future__ import annotations

import argparse
import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.cli import register
from qilu_hub.xr_bridge.layout import PanelLayout, layout_panel
from qilu_hub.xr_bridge.render import dirty_rect, paint_region, render_panel, split_y
from qilu_hub.xr_bridge.runtime import EXIT_SCENE
from qilu_hub.xr_bridge.swapchains import ImageDamage, Rect
from qilu_hub.xr_bridge.view import ControlView, PanelView

SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: p
        title: Kitchen
        placement: {relative_to: stage}
        size: {width: 0.28, height: 0.18}
        resolution: 1024
        layout: {type: grid, columns: 2}
        controls:
          - {type: toggle, entity: light.a, label: Light}
          - {type: slider, entity: light.a, attribute: brightness, label: Dim}
          - {type: readout, entity: sensor.t, label: Temperature}
"""


@pytest.fixture(scope="module")
def layout() -> PanelLayout:
    return layout_panel(parse_scene_text(SCENE).immersive().panels[0])


def _views() -> list[PanelView]:
    """Views that differ in every way a panel can: state, status, hover, slider, text (long enough to overflow
    its control), title and offline."""
    out = []
    for on, status, hovered, frac, text, title, offline in itertools.product(
        (True, False), ("ok", "pending"), (False, True), (0.0, 0.7), ("21 °C", "1234567890 °C, far too long"),
        ("Kitchen", "Kitchen 2"), (False, True),
    ):
        out.append(PanelView(title, (
            ControlView("toggle", "Light", "on" if on else "off", on, None, status, hovered),
            ControlView("slider", "Dim", f"{frac * 255:g}", None, frac, "ok", False),
            ControlView("readout", "Temperature", text, None, None, "ok", hovered and not on),
        ), offline=offline))
    return out


def _pixels(view: PanelView, layout: PanelLayout) -> np.ndarray:
    return np.asarray(render_panel(view, layout))


def test_only_the_dirty_rectangle_differs_and_is_painted_exactly(layout: PanelLayout) -> None:
    views = _views()
    rng = random.Random(7)  # a fixed sample of pairs: the same pairs on every run
    pairs = [(rng.choice(views), rng.choice(views)) for _ in range(150)]
    pairs += [(None, views[0]), (views[0], views[0])]
    for old, new in pairs:
        after = _pixels(new, layout)
        rect = dirty_rect(old, new, layout)
        painted = paint_region(old, new, layout)
        if old is not None:
            differ = np.argwhere((_pixels(old, layout) != after).any(axis=2))
            if rect is None:
                assert not len(differ), (old, new)
            elif len(differ):
                (y0, x0), (y1, x1) = differ.min(0), differ.max(0) + 1
                assert rect[0] <= x0 and rect[1] <= y0 and x1 <= rect[2] and y1 <= rect[3], (old, new, rect)
        if rect is None:
            assert painted is None
            continue
        assert painted is not None and painted[0] == rect
        x0, y0, x1, y1 = rect
        assert painted[1] == after[y0:y1, x0:x1].tobytes()


def test_a_value_change_repaints_only_the_lower_half_of_its_control(layout: PanelLayout) -> None:
    first = _views()[0].controls[:2]

    def view(text: str, hovered: bool = False) -> PanelView:
        return PanelView("Kitchen", (*first, ControlView("readout", "Temperature", text, hovered=hovered)))

    x0, _, x1, y1 = layout.controls[2]
    assert dirty_rect(view("21 °C"), view("22 °C"), layout) == (x0, split_y(layout.controls[2]), x1, y1)
    # the hover outline runs round the whole control
    assert dirty_rect(view("22 °C"), view("22 °C", hovered=True), layout) == layout.controls[2]
    assert dirty_rect(None, view("22 °C"), layout) == (0, 0, layout.width, layout.height)


@pytest.mark.parametrize("images,order", [(3, "cycle"), (2, "cycle"), (4, "random"), (1, "cycle")])
def test_every_acquired_image_ends_up_equal_to_the_full_copy(images: int, order: str) -> None:
    """A model of a swapchain: each write copies only the rectangles ImageDamage returns from the CPU-side full
    copy into the acquired image; after each write that image must equal the full copy, whatever it last held."""
    w, h = 40, 30
    rng = random.Random(images)
    full = np.zeros((h, w), dtype=np.int32)
    imgs = [np.full((h, w), -1, dtype=np.int32) for _ in range(images)]  # -1: garbage, never written
    damage = ImageDamage(images, w, h)
    copied, changed = [], []
    for step in range(60):
        if step == 0:
            rect: Rect = (0, 0, w, h)
        else:
            x0, y0 = rng.randrange(w - 1), rng.randrange(h - 1)
            rect = (x0, y0, rng.randrange(x0 + 1, w + 1), rng.randrange(y0 + 1, h + 1))
        full[rect[1]:rect[3], rect[0]:rect[2]] = step + 1
        index = step % images if order == "cycle" else rng.randrange(images)
        regions = damage.write(index, rect)
        for i, a in enumerate(regions):  # never overlapping (one Vulkan copy command takes them all)
            for b in regions[i + 1:]:
                assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
        for x0, y0, x1, y1 in regions:
            imgs[index][y0:y1, x0:x1] = full[y0:y1, x0:x1]
        assert (imgs[index] == full).all(), (step, index)
        copied.append(sum((r[2] - r[0]) * (r[3] - r[1]) for r in regions))
        changed.append((rect[2] - rect[0]) * (rect[3] - rect[1]))
    if images == 1:  # one image never misses anything: exactly the changed rectangle is copied
        assert copied == changed


def test_a_single_image_swapchain_copies_only_the_change() -> None:
    damage = ImageDamage(1, 100, 50)
    assert damage.write(0, (0, 0, 100, 50)) == [(0, 0, 100, 50)]
    assert damage.write(0, (10, 10, 20, 20)) == [(10, 10, 20, 20)]


def test_a_cycling_swapchain_catches_each_image_up_with_what_it_missed() -> None:
    damage = ImageDamage(3, 100, 50)
    assert damage.write(0, (0, 0, 100, 50)) == [(0, 0, 100, 50)]
    assert damage.write(1, (10, 10, 20, 20)) == [(0, 0, 100, 50)]  # never written: the whole panel
    assert damage.write(2, (10, 10, 20, 20)) == [(0, 0, 100, 50)]
    a = (10, 10, 20, 20)
    b = (50, 30, 60, 40)
    assert damage.write(0, b) == [a, b]  # image 0 missed the first change (written into 1 and 2)
    assert damage.write(1, a) == [a, b]  # 1 missed b; a again is copied once
    assert damage.write(2, (15, 15, 55, 35)) == [(10, 10, 60, 40)]  # overlapping: merged into their bounds



def test_whole_panel_uploads_copy_the_whole_panel_into_every_image(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """`qilu-hub xr --whole-panel-uploads`, for a runtime that does not keep pixels between acquires."""
    monkeypatch.setattr(ImageDamage, "partial", True)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["xr", "--hub", "ws://127.0.0.1:1", "--scene", str(tmp_path / "missing.yaml"),
                              "--whole-panel-uploads"])
    assert args.func(args) == EXIT_SCENE  # stops at the scene, after taking the flag
    assert ImageDamage.partial is False
    damage = ImageDamage(3, 100, 50)
    for index in (0, 1, 2, 0, 1):
        assert damage.write(index, (10, 10, 20, 20)) == [(0, 0, 100, 50)]
