"""Reference space and environment blend mode: chosen from what the runtime offers, never hard-coded.

Monado offers STAGE, LOCAL and LOCAL_FLOOR (with XR_EXT_local_floor), so the bridge runs against it with each
space. Its simulated and remote heads offer only OPAQUE; our build (scripts/build-monado.sh) lets
XRT_COMPOSITOR_NULL_BLEND_MODES replace the head's list, so the bridge also runs end to end on what AR headsets
offer: ADDITIVE only (a frame ended as OPAQUE is refused there) and ALPHA_BLEND with OPAQUE. XR_FB_passthrough
(Monado has no such extension) is checked on the offered sets only, and no test sees composed pixels: the null
compositor composes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import xr
from PIL import Image

from qilu_hub.xr_bridge.environment import EnvironmentChoiceError, choose_blend, choose_space, parse_blend
from qilu_hub.xr_bridge.render import BG
from qilu_hub.xr_bridge.runtime import EXIT_NO_GRAPHICS
from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from tests.xr.xrhelpers import TraceReader

B = xr.EnvironmentBlendMode
S = xr.ReferenceSpaceType
DEFAULT = parse_blend("alpha_blend,passthrough,additive,opaque")

SCENE = """\
version: 1
immersive_scenes:
  - name: s
    panels:
      - id: p
        placement: {relative_to: stage, offset: [0.0, 1.3, -1.0]}
        resolution: 256
        controls:
          - {type: toggle, entity: light.living_room}
"""


def test_an_additive_only_runtime_gets_additive_not_opaque() -> None:
    assert choose_blend([B.ADDITIVE], set(), DEFAULT).mode == B.ADDITIVE


def test_passthrough_preferred_over_vr_where_offered() -> None:
    assert choose_blend([B.OPAQUE, B.ALPHA_BLEND], set(), DEFAULT).mode == B.ALPHA_BLEND
    fb = choose_blend([B.OPAQUE], {"XR_FB_passthrough"}, DEFAULT)
    assert (fb.mode, fb.passthrough_layer) == (B.OPAQUE, True)
    vr = choose_blend([B.OPAQUE], set(), DEFAULT)
    assert (vr.mode, vr.passthrough_layer) == (B.OPAQUE, False)


def test_a_preference_the_runtime_cannot_meet_says_what_it_offers() -> None:
    with pytest.raises(EnvironmentChoiceError, match="asked for \\(opaque\\); it offers ADDITIVE"):
        choose_blend([B.ADDITIVE], set(), parse_blend("opaque"))
    with pytest.raises(ValueError, match="unknown blend mode"):
        parse_blend("opaque,glass")


def test_space_order_and_the_local_floor_offset() -> None:
    assert choose_space([S.LOCAL, S.LOCAL_FLOOR, S.STAGE]).kind == S.STAGE
    assert choose_space([S.VIEW, S.LOCAL, S.LOCAL_FLOOR]).kind == S.LOCAL_FLOOR
    local = choose_space([S.VIEW, S.LOCAL], eye_height=1.5)
    assert local.kind == S.LOCAL and local.origin.position == (0.0, -1.5, 0.0)
    with pytest.raises(EnvironmentChoiceError, match="no STAGE"):
        choose_space([S.VIEW, S.LOCAL], "stage")


def _run_bridge(remote_env: Any, bridge_cmd: Any, tmp_path: Path, *extra: str,
                offer: str | None = None) -> tuple[int, str, TraceReader]:
    """Runs the bridge for 40 frames; ``offer``: the blend modes Monado's head offers, in its order
    (scripts/build-monado.sh's XRT_COMPOSITOR_NULL_BLEND_MODES; None: the device's own, OPAQUE)."""
    env, _ = remote_env
    env = {k: v for k, v in env.items() if k != "XRT_COMPOSITOR_NULL_BLEND_MODES"}  # None: really the device's own
    if offer is not None:
        env["XRT_COMPOSITOR_NULL_BLEND_MODES"] = offer
    (tmp_path / "trace.jsonl").unlink(missing_ok=True)  # a second run in one test reads only its own trace
    ht = DevHubThread(DevHub("t", ["light.living_room"]))
    port = ht.start()
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    try:
        r = subprocess.run(bridge_cmd(f"ws://127.0.0.1:{port}/api/stream", "t", scene, tmp_path,
                                      "--max-frames", "40", *extra), env=env, capture_output=True, text=True,
                           timeout=120)
    finally:
        ht.stop()
    return r.returncode, r.stderr, TraceReader(tmp_path / "trace.jsonl")


@pytest.mark.parametrize(("space", "kind", "origin"), [
    ("auto", "STAGE", [0.0, 0.0, 0.0]),
    ("local_floor", "LOCAL_FLOOR", [0.0, 0.0, 0.0]),
    ("local", "LOCAL", [0.0, -1.45, 0.0]),
])
def test_monado_session_in_each_space_with_the_blend_mode_it_offers(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path, space: str, kind: str, origin: list[float]) -> None:
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, "--space", space, "--eye-height", "1.45")
    assert code == 0, err[-2000:]
    system = tr.wait(lambda e: e["ev"] == "system", "system")
    assert "XR_EXT_local_floor" in system["extensions"]
    base = tr.wait(lambda e: e["ev"] == "base_space", "base space")
    assert (base["kind"], base["origin"]) == (kind, origin)
    assert {"STAGE", "LOCAL", "LOCAL_FLOOR"} <= set(base["offered"])
    blend = tr.wait(lambda e: e["ev"] == "blend", "blend mode")
    # asked for the room first; Monado's simulated headset offers OPAQUE only, so OPAQUE it is
    assert (blend["mode"], blend["offered"], blend["passthrough_layer"]) == ("OPAQUE", ["OPAQUE"], False)
    tr.wait(lambda e: e["ev"] == "submit" and e["panel"] == "p", "the runtime took frames with the panel")


def test_monado_refuses_an_ar_only_preference_with_a_clear_exit(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    code, err, _ = _run_bridge(remote_env, bridge_cmd, tmp_path, "--blend", "additive,alpha_blend")
    assert code == EXIT_NO_GRAPHICS
    assert "supports none of the blend modes asked for (additive, alpha_blend); it offers OPAQUE" in err
    assert "Traceback" not in err


def _ran_every_frame_with(tr: TraceReader, err: str, mode: str) -> None:
    """The bridge ended its 40 frames (and those until the session stopped), each xrEndFrame returning success
    (the count is kept after it; a refused frame ends the run), showing the panel, with ``mode`` as their blend
    mode."""
    assert tr.wait(lambda e: e["ev"] == "blend", "blend mode")["mode"] == mode
    tr.wait(lambda e: e["ev"] == "submit" and e["panel"] == "p", "the runtime took frames with the panel")
    assert tr.wait(lambda e: e["ev"] == "frames", "frame count")["frames"] >= 40
    assert "EnvironmentBlendModeUnsupported" not in err and "Traceback" not in err, err[-2000:]


def test_an_additive_only_runtime_takes_every_frame_in_additive(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    # the failure: a see-through headset offering ADDITIVE only refuses a frame ended as OPAQUE
    # (XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED, checked by Monado's xrEndFrame against the head device)
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, offer="additive")
    assert code == 0, err[-2000:]
    blend = tr.wait(lambda e: e["ev"] == "blend", "blend mode")
    assert (blend["offered"], blend["choice"], blend["passthrough_layer"]) == (["ADDITIVE"], "additive", False)
    _ran_every_frame_with(tr, err, "ADDITIVE")
    assert "environment blend mode ADDITIVE; the runtime offers ADDITIVE" in err


def test_a_passthrough_runtime_gets_alpha_blend_and_a_vr_preference_opaque(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    # a video passthrough headset (Quest 3, Pico 4 class) offers ALPHA_BLEND and OPAQUE: the preference decides
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, "--blend", "alpha_blend,additive",
                                offer="alpha_blend,opaque")
    assert code == 0, err[-2000:]
    _ran_every_frame_with(tr, err, "ALPHA_BLEND")
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, "--blend", "opaque", offer="alpha_blend,opaque")
    assert code == 0, err[-2000:]
    _ran_every_frame_with(tr, err, "OPAQUE")
    assert tr.wait(lambda e: e["ev"] == "blend", "blend mode")["offered"] == ["ALPHA_BLEND", "OPAQUE"]


def test_the_bridge_reports_the_runtimes_offer_and_follows_its_own_preference(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    # the runtime lists OPAQUE first; the default preference (the room visible wherever offered) still takes
    # ALPHA_BLEND, and the offer is traced and logged as the runtime enumerated it
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, offer="opaque,alpha_blend")
    assert code == 0, err[-2000:]
    blend = tr.wait(lambda e: e["ev"] == "blend", "blend mode")
    assert (blend["offered"], blend["choice"]) == (["OPAQUE", "ALPHA_BLEND"], "alpha_blend")
    _ran_every_frame_with(tr, err, "ALPHA_BLEND")
    assert "environment blend mode ALPHA_BLEND; the runtime offers OPAQUE, ALPHA_BLEND" in err


def test_panels_are_composited_as_drawn_over_the_room(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    # with ALPHA_BLEND the room shows through the panel's translucent background; the swapchain holds that
    # background as drawn (straight alpha, as Pillow draws), so the layer must say its colours are not
    # premultiplied, or the runtime composites those pixels too bright
    code, err, tr = _run_bridge(remote_env, bridge_cmd, tmp_path, "--dump-dir", str(tmp_path / "dump"),
                                offer="alpha_blend,opaque")
    assert code == 0, err[-2000:]
    _ran_every_frame_with(tr, err, "ALPHA_BLEND")
    layer = tr.wait(lambda e: e["ev"] == "layer" and e["panel"] == "p", "the panel's layer")
    dump = tr.wait(lambda e: e["ev"] == "dump" and e["panel"] == "p", "the panel read back from its swapchain")
    img = Image.open(dump["path"]).convert("RGBA")
    assert BG[3] < 255
    assert img.getpixel((2, img.height - 3)) == BG
    assert set(layer["flags"]) == {"BLEND_TEXTURE_SOURCE_ALPHA_BIT", "UNPREMULTIPLIED_ALPHA_BIT"}
