"""Against Monado, with each binding: a change copies only its rectangle into the swapchain image, and the image
the runtime is given (read back from the GPU image after each upload) is still exactly the whole panel as drawn
from scratch, while the swapchain cycles through its images (each of which missed the changes written into the
others)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.layout import layout_panel
from qilu_hub.xr_bridge.render import render_panel, split_y
from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from qilu_hub.xr_bridge.view import ControlView, PanelView
from tests.xr.xrhelpers import TraceReader

SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: p
        title: Wall
        placement: {relative_to: stage, offset: [0.0, 1.4, -1.5]}
        size: {width: 0.5, height: 0.3}
        resolution: 512
        controls:
          - {type: toggle, entity: light.x, label: Light}
          - {type: readout, entity: sensor.power, label: Power}
"""
KINDS = ("toggle", "readout")
LABELS = ("Light", "Power")


def _expected(submit: dict[str, Any]) -> np.ndarray:
    """The whole panel drawn from scratch for what the trace says was submitted."""
    panel = parse_scene_text(SCENE).immersive().panels[0]
    controls = tuple(
        ControlView(kind, label, text, on, None, status, hovered)
        for kind, label, (text, status, on, hovered) in zip(KINDS, LABELS, submit["controls"], strict=True)
    )
    return np.asarray(render_panel(PanelView("Wall", controls, offline=submit["offline"]), layout_panel(panel)))


@pytest.mark.parametrize("graphics", ["vulkan", "opengl"])
def test_partial_uploads_leave_every_shown_image_exact(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path, graphics: str) -> None:
    env, _ = remote_env
    hub = DevHub("t", ["light.x"], {"sensor.power": 0})
    ht = DevHubThread(hub)
    port = ht.start()
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    lay = layout_panel(parse_scene_text(SCENE).immersive().panels[0])
    full = lay.width * lay.height * 4
    tx0, ty0, tx1, ty1 = lay.controls[0]
    rx0, _, rx1, ry1 = lay.controls[1]
    value_part = (rx0, split_y(lay.controls[1]), rx1, ry1)
    value_bytes = (rx1 - rx0) * (ry1 - value_part[1]) * 4
    toggle_bytes = (tx1 - tx0) * (ty1 - ty0) * 4
    cmd = bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "t", scene, tmp_path,
                     "--dump-dir", str(tmp_path / "dump"), "--graphics", graphics)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    tr = TraceReader(tmp_path / "trace.jsonl", proc)

    def submitted(value: str) -> dict[str, Any]:
        return tr.wait(lambda e: e["ev"] == "submit" and e["controls"][1][0].split()[0] == value,
                       f"panel submitted showing {value}")

    try:
        steps: list[tuple[str, str | None]] = [("sensor.power", str(v)) for v in range(1, 8)]
        steps += [("light.x", None), ("sensor.power", "8"), ("sensor.power", "9"), ("sensor.power", "10")]
        shown = [submitted("0")]
        for entity, value in steps:
            if value is None:
                ht.run(hub.set_state(entity, "on"))
                shown.append(tr.wait(lambda e: e["ev"] == "submit" and e["controls"][0][2] is True, "light on"))
            else:
                ht.run(hub.set_state(entity, int(value)))
                shown.append(submitted(value))
        images = []
        for sub in shown:
            dump = tr.wait(lambda e, s=sub: e["ev"] == "dump" and e["frame"] == s["frame"], "its read-back")
            images.append(dump["image"])
            got = np.asarray(Image.open(dump["path"]).convert("RGBA"))
            want = _expected(sub)
            assert (got == want).all(), (sub, dump, np.argwhere((got != want).any(axis=2))[:5].tolist())
        # the swapchain cycled: images were written again after others had been written meanwhile
        assert len(set(images)) >= 2 and len(images) > len(set(images)), images
        assert shown[0]["uploaded"] == full
        written: set[int] = set()
        for sub, image in zip(shown, images, strict=True):
            first_write = image not in written
            written.add(image)
            if sub["controls"][0][2] is True and not any(s["controls"][0][2] for s in shown[: shown.index(sub)]):
                assert sub["rect"] == list(lay.controls[0])  # the toggle's state: its whole control
            elif sub is not shown[0]:
                assert sub["rect"] == list(value_part)  # a value: the lower half of the readout only
            if not first_write:  # an image written before gets what changed since, never the whole panel
                assert sub["uploaded"] <= value_bytes + toggle_bytes < full
        # once every image has caught up with the toggle, a value change copies its rectangle and nothing else
        assert shown[-1]["uploaded"] == value_bytes, [(i, s["uploaded"]) for i, s in zip(images, shown, strict=True)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        ht.stop()
