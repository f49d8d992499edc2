"""End to end against a real OpenXR runtime (headless Monado).

Scene loaded, session focused, panels submitted; a select pressed through Monado's REMOTE driver toggles a
light through the hub's stream, and the panel image read back from its swapchain shows the new state.
Runs once with Vulkan and once with OpenGL (EGL).
Also: hub loss -> "offline" panels -> reconnect; clean exit through STOPPING/IDLE/EXITING."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from qilu_hub.scenes import parse_scene_text
from qilu_hub.xr_bridge.geometry import Pose
from qilu_hub.xr_bridge.layout import layout_panel
from qilu_hub.xr_bridge.render import ON, TITLE_BG
from qilu_hub.xr_bridge.runtime import PROFILES
from qilu_hub.xr_bridge.testing import DevHub, DevHubThread
from tests.xr.monado_remote import RemoteClient
from tests.xr.xrhelpers import TraceReader

SCENE = """\
version: 1
immersive_scenes:
  - name: test_room
    panels:
      - id: lights
        title: Lights
        placement: {relative_to: stage, offset: [0.0, 1.3, -1.0]}
        size: {width: 0.5, height: 0.3}
        resolution: 512
        controls:
          - {type: toggle, entity: light.living_room, label: Ceiling}
          - {type: readout, entity: sensor.temperature, label: Temp}
"""


def _submitted(panel: str, **want: Any) -> Any:
    def pred(ev: dict[str, Any]) -> bool:
        if ev["ev"] != "submit" or ev["panel"] != panel:
            return False
        c0 = ev["controls"][0]
        return all(
            {"text": c0[0], "status": c0[1], "hovered": c0[3], "offline": ev["offline"]}[k] == v
            for k, v in want.items()
        )

    return pred


@pytest.mark.parametrize("graphics", ["auto", "opengl"])
def test_select_on_panel_toggles_light_and_panel_shows_it(
    remote_env: Any, bridge_cmd: Any, tmp_path: Path, graphics: str
) -> None:
    """auto picks Vulkan on Monado; opengl binds the session through EGL (llvmpipe) instead."""
    env, remote_port = remote_env
    hub = DevHub("secret", ["light.living_room"], {"sensor.temperature": 21})
    ht = DevHubThread(hub)
    hub_port = ht.start()
    scene_path = tmp_path / "scene.yaml"
    scene_path.write_text(SCENE)
    panel = parse_scene_text(SCENE).immersive().panels[0]
    cmd = bridge_cmd(
        f"ws://127.0.0.1:{hub_port}/api/stream",
        "secret",
        scene_path,
        tmp_path,
        "--dump-dir",
        str(tmp_path / "dump"),
        "--graphics",
        graphics,
    )
    with (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stderr=err)
    tr = TraceReader(tmp_path / "trace.jsonl", proc)
    ht2 = None
    try:
        system = tr.wait(lambda e: e["ev"] == "system", "instance and graphics created")
        assert system["graphics"] == ("vulkan" if graphics == "auto" else "opengl")
        if graphics == "opengl":
            assert {"XR_KHR_opengl_enable", "XR_MNDX_egl_enable"} <= set(system["extensions"])
            assert "XR_KHR_vulkan_enable" not in system["extensions"]
        tr.wait(lambda e: e["ev"] == "session_state" and e["state"] == "FOCUSED", "session FOCUSED")
        bound = tr.wait(lambda e: e["ev"] == "bindings", "bindings suggested")
        assert set(bound["profiles"]) == set(PROFILES)  # every binding path is valid (the runtime checks them)
        tr.wait(_submitted("lights", text="off", offline=False), "panel submitted showing 'off'")

        # aim the right controller at the toggle's centre, from 0.6 m in front of the panel
        u, v = layout_panel(panel).centre_uv(0)
        x, y = (u - 0.5) * panel.width_m, (0.5 - v) * panel.height_m
        panel_pose = Pose(panel.placement.offset)
        target = panel_pose.compose(Pose((x, y, 0.0))).position
        remote = RemoteClient(remote_port)
        aim_from = (target[0], target[1], target[2] + 0.6)
        remote.right_hand(position=aim_from, orientation=(0, 0, 0, 1), trigger=False)
        tr.wait(_submitted("lights", hovered=True), "toggle highlighted under the aim ray")

        mark = len(tr.events)
        remote.right_hand(trigger=True)
        intent = tr.wait(lambda e: e["ev"] == "intent", "select -> intent", mark)
        assert (intent["entity_id"], intent["command"]) == ("light.living_room", "toggle")
        remote.right_hand(trigger=False)
        tr.wait(lambda e: e["ev"] == "result" and e["ok"], "hub accepted the command", mark)
        assert hub.calls == [("light.living_room", "toggle", {})]
        assert hub.states["light.living_room"]["v"] == "on"
        shown = tr.wait(_submitted("lights", text="on", status="ok"), "panel submitted showing 'on'", mark)

        # the image in the swapchain (read back from the GPU image) shows the toggle as ON
        dump = tr.wait(
            lambda e: e["ev"] == "dump" and e["frame"] == shown["frame"] and e["panel"] == "lights",
            "read-back of that frame",
        )
        img = Image.open(dump["path"]).convert("RGBA")
        lay = layout_panel(panel)
        x0, y0, x1, y1 = lay.controls[0]
        assert img.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == ON
        _, ty0, tx1, ty1 = lay.title  # upright: the title bar is at the top (GL stores rows bottom-up)
        assert img.getpixel((tx1 - 3, (ty0 + ty1) // 2)) == TITLE_BG
        assert img.getpixel((tx1 - 3, img.height - 1 - (ty0 + ty1) // 2)) != TITLE_BG
        # shown in the first frame after the new state came back: no extra frame of lag inside the bridge
        state_ev = tr.wait(lambda e: e["ev"] == "state" and e["value"] == "on", "state event", mark)
        assert tr.index(state_ev) < tr.index(shown) and state_ev["frame"] == shown["frame"]

        # grab (squeeze) drags the panel with the hand; on release its placement is persisted
        mark = len(tr.events)
        remote.right_hand(squeeze=True)
        tr.wait(lambda e: e["ev"] == "intent" and e.get("action") == "move_panel", "grab -> move_panel", mark)
        remote.right_hand(position=(aim_from[0] + 0.2, aim_from[1], aim_from[2]))
        remote.right_hand(squeeze=False)
        moved = tr.wait(lambda e: e["ev"] == "moved", "panel dropped", mark)
        assert abs(moved["pose"]["x"] - 0.2) < 0.01 and abs(moved["pose"]["z"] - (-1.0)) < 0.01
        saved = json.loads((tmp_path / "placements.json").read_text())
        assert abs(saved["panels"]["test_room/lights"]["pose"]["x"] - 0.2) < 0.01

        # menu (Index "b") hides the panels
        mark = len(tr.events)
        remote.right_hand(menu=True)
        tr.wait(lambda e: e["ev"] == "intent" and e.get("action") == "toggle_menu", "menu -> toggle_menu", mark)
        remote.right_hand(menu=False)

        # hub goes away -> panels say offline; hub comes back on the same port -> live again
        mark = len(tr.events)
        ht.stop()
        tr.wait(_submitted("lights", offline=True), "panel submitted as offline", mark)
        ht2 = DevHubThread(hub, port=hub_port)
        ht2.start()
        tr.wait(_submitted("lights", offline=False, text="on"), "panel live again after reconnect", len(tr.events))
        remote.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        tr.wait(lambda e: e["ev"] == "session_state" and e["state"] == "EXITING", "EXITING")
        states = [e["state"] for e in tr.events if e["ev"] == "session_state"]
        assert states[-3:] == ["STOPPING", "IDLE", "EXITING"], states
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        (ht2 or ht).stop()
