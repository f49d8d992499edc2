"""The Hub: owns the core services and starts and stops the components in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .bus import EventBus, EventType
from .commands import CommandRouter
from .config import ConfigError, load_config
from .const import HISTORY_DB, REGISTRY_DB, __version__
from .dir_lock import DirLock
from .file_modes import PRIVATE_DIR, secret_files, warn_exposed
from .heap import release_free_heap
from .model import Pose
from .presentation import Presentation
from .problems import Problems
from .recorder import Recorder, RecorderConfig
from .registry import AreaRegistry, DeviceRegistry, EntityRegistry
from .resource_limits import install_accept_error_filter, raise_open_file_limit
from .states import StateMachine
from .storage import RegistryStore
from .supervisor import Supervisor
from .tokens import TokenStore

_LOGGER = logging.getLogger(__name__)

EVENT_HUB_STARTED: EventType[dict[str, Any]] = EventType("hub_started")
EVENT_HUB_STOPPING: EventType[dict[str, Any]] = EventType("hub_stopping")

STOP_TIMEOUT = 10.0


@runtime_checkable
class Component(Protocol):
    """A part of the hub with a lifecycle: the API, discovery, the MQTT bridge, the recognizer, ..."""

    name: str

    async def async_start(self, hub: Hub) -> None: ...

    async def async_stop(self) -> None: ...


class Hub:
    """The core object. Construct, add components, ``await async_start()``, later ``await async_stop()``."""

    def __init__(self, config_dir: Path | str, config: dict[str, Any] | None = None, *, recorder: bool = True) -> None:
        self.config_dir = Path(config_dir)
        self.config_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        self.config = config if config is not None else load_config(self.config_dir)
        self.version = __version__
        self.started_at: float | None = None
        self.bus = EventBus()
        self.states = StateMachine(self.bus)
        self.supervisor = Supervisor()
        self.storage = RegistryStore(self.config_dir / REGISTRY_DB)
        self.areas = AreaRegistry(self.storage, self.bus)
        self.devices = DeviceRegistry(self.storage, self.bus)
        self.entities = EntityRegistry(self.storage, self.bus, self.devices, self.areas)
        # Every state carries what Home Assistant would show for its entity (friendly_name, unit, ...).
        self.presentation = Presentation(self.bus, self.states, self.entities, self.devices)
        self.states.decorate = self.presentation.decorate
        self.tokens = TokenStore(self.storage)
        self.commands = CommandRouter(self.entities, self.bus)
        self.problems = Problems(self.bus)  # what is wrong now and needs a person (GET /api/problems)
        self.components: dict[str, Component] = {}
        self.dir_lock = DirLock(self.config_dir)  # held while running: `backup restore` refuses then
        self._order: list[Component] = []
        self._started: list[Component] = []
        self._stop_event = asyncio.Event()
        self.recorder: Recorder | None = None
        if recorder:
            rc = self.config.get("recorder", {})
            self.recorder = Recorder(
                self.config_dir / HISTORY_DB,
                RecorderConfig(
                    keep_days=float(rc.get("keep_days", 10)),
                    max_bytes=int(float(rc.get("max_size_mb", 64)) * 1024 * 1024),
                    commit_interval=float(rc.get("commit_interval", 1.0)),
                    exclude_domains=tuple(rc.get("exclude_domains", ())),
                    exclude_entities=tuple(rc.get("exclude_entities", ())),
                ),
            )
            self.add_component(self.recorder)

    # -- components ---------------------------------------------------------------------
    def add_component(self, component: Component) -> None:
        if component.name in self.components:
            raise ValueError(f"a component named {component.name!r} is already added")
        self.components[component.name] = component
        self._order.append(component)

    def area_of(self, entity_id: str) -> str | None:
        entity = self.entities.get(entity_id)
        return self.entities.area_of(entity) if entity is not None else None

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self) -> None:
        """Start components in the order they were added; on failure stop those already started."""
        # Before any component opens files: every client connection and driver socket needs one.
        raise_open_file_limit()
        install_accept_error_filter()
        warn_exposed(secret_files(self.config_dir, self.config))
        if not self.dir_lock.acquire():
            # Not fatal (an old hub may be stopping), but two hubs on one directory fight over its devices.
            _LOGGER.warning("Another qilu-hub seems to run on %s (it holds %s)", self.config_dir, self.dir_lock.path)
        for area in self.config.get("areas") or []:
            pose = Pose.from_dict(dict(area["pose"])) if area.get("pose") else None
            created = self.areas.async_get_or_create(area["name"], area.get("floor"), pose)
            if pose is not None and created.pose != pose:  # the file is the source of an area's frame
                self.areas.async_update(created.id, pose=pose)
        for component in self._order:
            try:
                await component.async_start(self)
            except ConfigError as err:  # the user's to fix: the message says what, a traceback would bury it
                _LOGGER.error("Component %s cannot start: %s; stopping the hub", component.name, err)
                await self.async_stop()
                raise
            except Exception:
                _LOGGER.exception("Component %s failed to start; stopping the hub", component.name)
                await self.async_stop()
                raise
            self._started.append(component)
        self.started_at = time.time()
        release_free_heap()  # what the imports and start-up freed goes back to the system
        self.bus.fire(EVENT_HUB_STARTED, {"version": self.version})
        _LOGGER.info("qilu-hub %s started with %d components", self.version, len(self._started))

    async def async_stop(self) -> None:
        """Stop components in reverse order, then background tasks, then flush and close storage."""
        self.bus.fire(EVENT_HUB_STOPPING, {})
        while self._started:
            component = self._started.pop()
            try:
                await asyncio.wait_for(component.async_stop(), STOP_TIMEOUT)
            except Exception:
                _LOGGER.exception("Component %s did not stop cleanly", component.name)
        await self.supervisor.stop()
        self.storage.close()
        self.dir_lock.release()
        self._stop_event.set()

    def request_stop(self) -> None:
        self._stop_event.set()

    async def run_until_stopped(self) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``), then shut down cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
                loop.add_signal_handler(sig, self.request_stop)
        await self.async_start()
        try:
            await self._stop_event.wait()
        finally:
            self._stop_event.clear()
            await self.async_stop()
