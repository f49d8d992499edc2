"""The full loop against the real hub: Hub + virtual appliances + the API's msgpack stream, in-process on a
loopback port; the bridge as `python -m qilu_hub.xr_bridge xr` on headless Monado; select pressed through the REMOTE
driver. The ceiling light must switch in the hub, the panel read back from its swapchain must show it in the
frame the new state arrived, panels must say "offline" while the hub restarts and recover after."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.scenes import parse_scene_text
from qilu_hub.virtual import VirtualAppliances
from qilu_hub.xr_bridge.geometry import Pose
from qilu_hub.xr_bridge.layout import layout_panel
from qilu_hub.xr_bridge.render import ON
from tests.xr.monado_remote import RemoteClient
from tests.xr.xrhelpers import TraceReader

LIGHT = "light.living_room_ceiling_light"
SCENE = f"""\
version: 1
immersive_scenes:
  - name: real
    panels:
      - id: room
        placement: {{relative_to: stage, offset: [0.0, 1.3, -1.0]}}
        size: {{width: 0.5, height: 0.3}}
        resolution: 512
        controls:
          - {{type: toggle, entity: {LIGHT}, label: Ceiling}}
          - {{type: readout, entity: sensor.living_room_tv_plug_power, label: TV power}}
"""


class HubThread:
    """The real hub on its own event loop thread (the test's thread blocks while it waits on the bridge)."""

    def __init__(self, config_dir: Path, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.hub = Hub(config_dir)
        self.hub.add_component(VirtualAppliances(animate=False))
        self.api = ApiServer("127.0.0.1", port)
        self.hub.add_component(self.api)
        self.token = ""
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self, token: bool = True) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.hub.async_start(), self.loop).result(30)
        if token:  # tokens persist in the config directory, so a restarted hub accepts the same one
            _, self.token = self.hub.tokens.create("headset", Scopes(admin=True))
        return self.api.url.replace("http", "ws", 1) + "/api/stream"

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.hub.async_stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def test_select_switches_a_real_hub_light(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    env, remote_port = remote_env
    ht = HubThread(tmp_path / "config")
    url = ht.start()
    scene_path = tmp_path / "scene.yaml"
    scene_path.write_text(SCENE)
    panel = parse_scene_text(SCENE).immersive().panels[0]
    with (tmp_path / "stderr.log").open("wb") as err:
        cmd = bridge_cmd(url, ht.token, scene_path, tmp_path, "--dump-dir", str(tmp_path / "dump"))
        proc = subprocess.Popen(cmd, env=env, stderr=err)
    tr = TraceReader(tmp_path / "trace.jsonl", proc)
    try:
        tr.wait(lambda e: e["ev"] == "submit" and e["controls"][0][0] == "off", "panel showing the light off")
        u, v = layout_panel(panel).centre_uv(0)
        target = Pose(panel.placement.offset).compose(
            Pose(((u - 0.5) * panel.width_m, (0.5 - v) * panel.height_m, 0.0))
        )
        remote = RemoteClient(remote_port)
        remote.right_hand(
            position=(target.position[0], target.position[1], target.position[2] + 0.6),
            orientation=(0, 0, 0, 1),
            trigger=False,
        )
        tr.wait(lambda e: e["ev"] == "submit" and e["controls"][0][3], "toggle highlighted")
        mark = len(tr.events)
        remote.right_hand(trigger=True)
        tr.wait(lambda e: e["ev"] == "result" and e["ok"], "the hub accepted the toggle", mark)
        remote.right_hand(trigger=False)
        shown = tr.wait(
            lambda e: e["ev"] == "submit" and e["controls"][0][:2] == ["on", "ok"], "panel showing the light on", mark
        )
        state = ht.hub.states.get(LIGHT)
        assert state is not None and state.value == "on"
        arrived = tr.wait(lambda e: e["ev"] == "state" and e["entity"] == LIGHT and e["value"] == "on", "delta", mark)
        assert arrived["frame"] == shown["frame"]  # on screen in the frame the new state arrived
        dump = tr.wait(lambda e: e["ev"] == "dump" and e["frame"] == shown["frame"], "swapchain read-back")
        x0, y0, x1, y1 = layout_panel(panel).controls[0]
        assert Image.open(dump["path"]).convert("RGBA").getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == ON

        # the hub restarts: panels say offline, then the bridge reconnects (same port, same token)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        mark = len(tr.events)
        ht.stop()
        tr.wait(lambda e: e["ev"] == "submit" and e["offline"], "panels offline", mark)
        ht = HubThread(tmp_path / "config", port)
        ht.token = cmd[cmd.index("--token") + 1]
        ht.start(token=False)
        mark = len(tr.events)
        tr.wait(lambda e: e["ev"] == "submit" and not e["offline"], "panels live again", mark)
        remote.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ht.stop()


def test_panels_follow_device_and_area_poses_from_the_hub(remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    """Device- and area-relative panels are placed from the poses the hub streams, and move when they change
    in the hub's registries (here over the OpenGL binding)."""
    from qilu_hub.model import Pose as HubPose

    env, _ = remote_env
    ht = HubThread(tmp_path / "config")
    url = ht.start()

    def on_hub(fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), ht.loop).result(10)

    entity = ht.hub.entities.get(LIGHT)
    assert entity is not None and entity.device_id
    dev = entity.device_id
    on_hub(lambda: ht.hub.devices.async_update(dev, pose=HubPose(1.0, 1.0, -2.0)))
    scene_path = tmp_path / "scene.yaml"
    scene_path.write_text(
        SCENE.replace("id: room", "id: lamp").replace(
            "{relative_to: stage, offset: [0.0, 1.3, -1.0]}",
            f"{{relative_to: device, ref: {dev}, offset: [0, 0.4, 0]}}",
        )
        + "      - id: wall\n"
        "        placement: {relative_to: area, ref: living_room, offset: [0.0, 1.5, 0.0]}\n"
        "        controls:\n"
        f"          - {{type: toggle, entity: {LIGHT}}}\n"
    )
    with (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            bridge_cmd(url, ht.token, scene_path, tmp_path, "--graphics", "opengl"), env=env, stderr=err
        )
    tr = TraceReader(tmp_path / "trace.jsonl", proc)

    def at(panel: str, x: float, y: float, z: float) -> Any:
        def pred(e: dict[str, Any]) -> bool:
            if e["ev"] != "layer_pose" or e["panel"] != panel:
                return False
            p = e["pose"]
            return all(abs(p[k] - v) < 1e-6 for k, v in (("x", x), ("y", y), ("z", z)))

        return pred

    try:
        tr.wait(at("lamp", 1.0, 1.4, -2.0), "lamp panel submitted 0.4 m above the light's device pose")
        tr.wait(at("wall", 0.0, 1.5, 0.0), "area panel at the stage origin while the area has no pose")
        mark = len(tr.events)
        on_hub(lambda: ht.hub.areas.async_update("living_room", pose=HubPose(3.0, 0.0, -1.0)))
        tr.wait(at("wall", 3.0, 1.5, -1.0), "area panel moved with the area's new frame", mark)
        on_hub(lambda: ht.hub.devices.async_update(dev, pose=HubPose(-1.0, 0.5, -1.0)))
        tr.wait(at("lamp", -1.0, 0.9, -1.0), "lamp panel moved with the device", mark)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ht.stop()


def test_a_panel_on_an_unknown_device_stops_the_bridge_instead_of_sitting_at_the_origin(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    env, _ = remote_env
    ht = HubThread(tmp_path / "config")
    url = ht.start()
    wrong = "0123456789abcdef0123456789abcdef"
    scene_path = tmp_path / "scene.yaml"
    scene_path.write_text(SCENE.replace("{relative_to: stage, offset: [0.0, 1.3, -1.0]}",
                                        f"{{relative_to: device, ref: {wrong}, offset: [0, 0.4, 0]}}"))
    try:
        r = subprocess.run(bridge_cmd(url, ht.token, scene_path, tmp_path), env=env, capture_output=True,
                           text=True, timeout=120)
    finally:
        ht.stop()
    assert r.returncode == 3, r.stderr[-2000:]
    assert f"panel 'room': the hub has no device '{wrong}'" in r.stderr


def test_the_bridge_reaches_an_https_hub_trusting_only_its_ca(
        remote_env: Any, bridge_cmd: Any, tmp_path: Path) -> None:
    """hub.tls: auto: the bridge connects over wss:// with --ca naming the hub's CA file and nothing else."""
    env, _ = remote_env
    config = tmp_path / "config"
    config.mkdir()
    (config / "configuration.yaml").write_text("hub:\n  tls: auto\n")
    ht = HubThread(config)
    url = ht.start()
    assert url.startswith("wss://")
    scene_path = tmp_path / "scene.yaml"
    scene_path.write_text(SCENE)
    proc = subprocess.Popen(bridge_cmd(url, ht.token, scene_path, tmp_path, "--ca", str(config / "tls" / "ca.crt")),
                            env=env, stderr=subprocess.DEVNULL)
    try:
        tr = TraceReader(tmp_path / "trace.jsonl", proc)
        tr.wait(lambda e: e["ev"] == "snapshot", "the hub's snapshot over wss://")
        tr.wait(lambda e: e["ev"] == "submit" and e["controls"][0][0] in ("on", "off"), "a live panel")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ht.stop()
