"""A real hub for the WebXR and client-library tests: virtual (demo) appliances, the scenes component watching a
scene folder, the API on a loopback port, all on its own event-loop thread so that a synchronous test (Playwright's
sync API, a node subprocess) can drive clients while the hub serves them, and restart it on the same port."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.scene_files import __file__ as scene_files_init
from qilu_hub.scenes.manager import SceneManager
from qilu_hub.virtual import VirtualAppliances

EXAMPLE = Path(scene_files_init).parent / "examples" / "living_room.yaml"
LIGHT = "light.living_room_ceiling_light"
PLUG = "switch.living_room_tv_plug"


class HubThread:
    def __init__(self, config_dir: Path, port: int = 0, scene_text: str | None = None) -> None:
        scenes = config_dir / "scenes"
        scenes.mkdir(parents=True, exist_ok=True)
        if scene_text is not None:
            (scenes / "scene.yaml").write_text(scene_text)
        elif not any(scenes.iterdir()):
            shutil.copy(EXAMPLE, scenes / "living_room.yaml")
        self.config_dir = config_dir
        self.loop = asyncio.new_event_loop()
        self.hub = Hub(config_dir, load_config(config_dir))
        self.hub.add_component(VirtualAppliances(animate=False))
        self.hub.add_component(SceneManager([scenes], watch_interval=0.1))
        self.api = ApiServer("127.0.0.1", port, login_limiter=LoginLimiter(max_failures=1000))
        self.hub.add_component(self.api)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        """Starts the hub; returns an admin token (tokens persist in the config directory across restarts)."""
        self._thread.start()
        self.run(self.hub.async_start())
        return self.call(lambda: self.hub.tokens.create("headset", Scopes(admin=True))[1])

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def port(self) -> int:
        assert self.api.port is not None
        return self.api.port

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any) -> Any:
        """Run fn() on the hub's loop (the registries and state machine are not thread-safe)."""
        async def wrapped() -> Any:
            return fn()
        return self.run(wrapped())

    def state(self, entity_id: str) -> Any:
        return self.call(lambda: self.hub.states.get(entity_id))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.run(self.hub.async_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
