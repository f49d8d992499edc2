"""The scenes component: activates home scenes on request, on a schedule, or when a situation is recognised, and
keeps home and immersive scenes current as their files change (``watch.py`` notices the changes)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..capabilities import CommandError
from ..const import EVENT_SCENE_RECOGNIZED, EVENT_XR_SCENES_UPDATED
from ..problems import Problems
from ..registry import EVENT_ENTITY_REGISTRY_UPDATED
from .catalog import HubCatalog
from .loader import SceneError, SceneIssue, load_scene_file
from .model import HomeScene, ImmersiveScene, SceneFile, ScheduleTrigger, SituationTrigger
from .watch import ImmersiveScenes, SceneFileWatch

_LOG = logging.getLogger(__name__)
# A schedule reads the wall clock again at least this often (seconds) instead of trusting one long sleep: asyncio
# sleeps on the monotonic clock, and the wall clock may be stepped (NTP after a Raspberry Pi boots) or slewed.
SCHEDULE_STEP = 30.0
# A fire time the clock jumped past by more than this (seconds) is skipped, not run hours late.
SCHEDULE_GRACE = 120.0
NAME_CLASH = "name_clash"  # SceneIssue.kind: a scene name another file has (read again when that name is freed)
PROBLEM_PREFIX = "scenes:"  # + a refused file's path: its id in the hub's problem list (hub.problems)


def local_zone() -> dt.tzinfo:
    """The system's time zone with its rules (daylight saving), not just today's UTC offset: ``TZ`` when it names
    a zone, else /etc/localtime; today's fixed offset only when neither can be read."""
    from zoneinfo import ZoneInfo  # here: only schedules need it, and the API imports this package

    name = os.environ.get("TZ", "").removeprefix(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, KeyError):  # KeyError: ZoneInfoNotFoundError (e.g. a POSIX rule string in TZ)
        return dt.datetime.now().astimezone().tzinfo or dt.UTC


def next_fire(now: dt.datetime, trigger: ScheduleTrigger) -> dt.datetime:
    """The first time strictly after `now` at trigger.hour:minute on an allowed weekday (same tz as now).

    Days are counted on the wall clock, so with a zone that has rules (ZoneInfo) 07:00 stays 07:00 across a
    daylight-saving change. A time the spring change skips fires as the clock shows it an hour later; a time the
    autumn change repeats fires the first time only."""
    candidate = now.replace(hour=trigger.hour, minute=trigger.minute, second=0, microsecond=0, fold=0)
    if candidate.timestamp() <= now.timestamp():  # not `<=`: within one zone that compares wall times
        candidate += dt.timedelta(days=1)
    for _ in range(8):
        if trigger.days is None or candidate.weekday() in trigger.days:
            return candidate
        candidate += dt.timedelta(days=1)
    raise ValueError("schedule has no valid day")  # unreachable: the schema requires >= 1 day


class SituationGate:
    """Confidence threshold + cooldown for one situation trigger (clock injectable for tests)."""

    def __init__(self, trigger: SituationTrigger, clock: Callable[[], float] = time.monotonic) -> None:
        self.trigger = trigger
        self._clock = clock
        self._last: float | None = None

    def offer(self, label: str, confidence: float) -> bool:
        if label != self.trigger.label or confidence < self.trigger.min_confidence:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.trigger.cooldown:
            return False
        self._last = now
        return True


def _without_line(trigger: Any) -> Any:
    """A trigger as it acts (an edit elsewhere in the file moves its line, not what it does)."""
    return dataclasses.replace(trigger, line=0)


def _without_lines(triggers: Iterable[Any]) -> list[Any]:
    return [_without_line(t) for t in triggers]


@dataclass
class ActivationResult:
    scene: str
    ok: list[str]
    failed: dict[str, str]


class SceneManager:
    """Hub component `scenes`. Loads every *.yaml under the given paths at start, validated against the hub, and
    again whenever a file changes (``watch_interval`` seconds between looks; 0: at start only).

    A file is taken whole or not at all: a valid one replaces everything the file held before (home scenes with
    their ``scene.*`` entities, schedules and situation triggers, and immersive scenes); a refused one is logged with
    file:line, listed in ``errors`` (or ``pending`` when it names only entities not known yet) and its last good
    scenes keep working. A scene name that another file already uses refuses the file that came later."""

    name = "scenes"

    def __init__(self, paths: Iterable[str | Path], clock: Callable[[], float] = time.monotonic,
                 watch_interval: float = 0.0) -> None:
        self._paths = [Path(p) for p in paths]
        self.immersive = ImmersiveScenes()  # what the scene API serves to headsets
        self.watch = SceneFileWatch(self._files, watch_interval, self._files_changed)
        self._clock = clock
        self.scenes: dict[str, HomeScene] = {}
        self._home_files: dict[Path, tuple[HomeScene, ...]] = {}  # each file's home scenes, as last loaded
        self._errors: dict[Path, SceneError] = {}
        self._gates: list[tuple[SituationGate, HomeScene]] = []
        self._tasks: list[asyncio.Task[None]] = []  # activations started by a recognised situation
        self._schedules: dict[str, list[asyncio.Task[None]]] = {}
        self._unlisten: Any = None
        self._hub: Any = None
        self._active = False  # scenes are entities with schedules (after async_start)
        self._unregister: dict[str, Callable[[], None]] = {}
        self.pending: dict[Path, SceneError] = {}  # refused only for entities not known yet
        self.retry_delay = 0.5
        self.schedule_step = SCHEDULE_STEP
        self._retry_handle: asyncio.TimerHandle | None = None
        self._unlisten_entities: Any = None
        self._problem_list: Problems | None = None  # the hub's, where refused files are listed (load sets it)

    @property
    def errors(self) -> list[SceneError]:
        """Why each refused file (its last good scenes, if any, still work) was refused, as last read."""
        return list(self._errors.values())

    def _files(self) -> list[Path]:
        out: list[Path] = []
        for p in self._paths:
            if p.is_dir():
                out.extend(sorted(p.rglob("*.yaml")))
            elif p.exists() or p.suffix:  # a named file that is missing is an error worth reporting
                out.append(p)
        return out

    def load(self, hub: Any) -> None:
        """Load all files; a refused file is logged with file:line and skipped (the rest still load). A file
        refused only for entities the hub does not know yet is kept pending and retried as entities appear."""
        self.scenes.clear()
        self._home_files.clear()
        self.immersive.scenes.clear()
        self._gates.clear()
        self._problem_list = getattr(hub, "problems", None)
        for f in [*self._errors, *self.pending]:
            self._problem_gone(f)
        self._errors.clear()
        self.pending.clear()
        self.watch.forget()
        self._load_files(HubCatalog(hub), self._files(), [])

    def _files_changed(self, changed: list[Path], gone: list[Path]) -> None:
        self._load_files(HubCatalog(self._hub), changed, gone)

    def _load_files(self, catalog: HubCatalog, changed: list[Path], gone: list[Path]) -> None:
        """Read `changed` again and drop what `gone` held; each valid file replaces its scenes whole."""
        names_before = set(self.scenes) | set(self.immersive.scenes)
        parsed: dict[Path, SceneFile] = {}
        for f in changed:
            self.watch.remember(f)  # before reading: a write from now on is seen at the next check
            try:
                parsed[f] = load_scene_file(f, catalog)
            except SceneError as e:
                self._refuse(f, e)
        for f in gone:
            self._errors.pop(f, None)
            self.pending.pop(f, None)
            self._problem_gone(f)
        for f, issue in self._name_clashes(parsed, gone).items():
            del parsed[f]
            self._refuse(f, SceneError([issue]))
        xr_changed: set[str] = set()
        home_changed: set[str] = set()
        for f in gone:
            home_changed |= self._put_home(f, ())
            xr_changed |= self.immersive.put_file(f, ())
        for f, sf in parsed.items():
            self._errors.pop(f, None)
            self.pending.pop(f, None)
            self._problem_gone(f)
            home_changed |= self._put_home(f, sf.home_scenes)
            xr_changed |= self.immersive.put_file(f, sf.immersive_scenes)
        self._rebuild_gates()
        if self._active:
            if home_changed:
                _LOG.info("home scenes changed: %s", ", ".join(sorted(home_changed)))
            if xr_changed:
                _LOG.info("immersive scenes changed: %s", ", ".join(sorted(xr_changed)))
                self._hub.bus.fire(EVENT_XR_SCENES_UPDATED, {"scenes": sorted(xr_changed)})
        # A scene moved to another file, saved there first: that file was refused for the name, which is free now.
        # (It ends: files read in this round are not read again here, and one read again unchanged frees nothing.)
        released = names_before - set(self.scenes) - set(self.immersive.scenes)
        waiting = [f for f, e in self._errors.items()
                   if f not in changed and any(i.kind == NAME_CLASH for i in e.issues)]
        if released and waiting:
            self._load_files(catalog, waiting, [])

    def _owned_names(self, f: Path) -> set[str]:
        return {hs.name for hs in self._home_files.get(f, ())} | self.immersive.names_from(f)

    def _name_clashes(self, parsed: dict[Path, SceneFile], gone: list[Path]) -> dict[Path, SceneIssue]:
        """Files among `parsed` that would take a scene name another file keeps (first file in order wins)."""
        refused: dict[Path, SceneIssue] = {}
        while True:  # a refused file keeps its old names, which may clash with a file accepted before it
            owners: dict[str, Path] = {}
            for f in set(self._home_files) | {p for _, p in self.immersive.scenes.values()}:
                if f not in gone and (f not in parsed or f in refused):
                    owners.update((name, f) for name in self._owned_names(f))
            clash: tuple[Path, SceneIssue] | None = None
            for f in sorted(p for p in parsed if p not in refused):
                scenes: list[HomeScene | ImmersiveScene] = [*parsed[f].home_scenes, *parsed[f].immersive_scenes]
                for scene in scenes:
                    other = owners.get(scene.name)
                    if other is not None and other != f:
                        clash = f, SceneIssue(str(f), scene.line,
                                              f"scene name {scene.name!r} is already used in {other}", NAME_CLASH)
                        break
                if clash is not None:
                    break
                owners.update((scene.name, f) for scene in scenes)
            if clash is None:
                return refused
            refused[clash[0]] = clash[1]

    def _refuse(self, f: Path, e: SceneError) -> None:
        kept = f" (its last good scenes keep working: {', '.join(sorted(self._owned_names(f)))})" \
            if self._owned_names(f) else ""
        if e.only_unknown_entities:
            self.pending[f] = e
            self._errors.pop(f, None)
            _LOG.warning("scene file waits for entities not known yet (retried as they appear)%s:\n%s", kept, e)
        else:
            self._errors[f] = e
            self.pending.pop(f, None)
            _LOG.error("scene file refused%s:\n%s", kept, e)
        self._problem(f, e, kept)

    def _problem(self, f: Path, e: SceneError, kept: str) -> None:
        """The hub's problem list names the refused file at its first issue, until the file loads or goes."""
        problems = self._problem_list
        if problems is None or not e.issues:
            return
        first = e.issues[0]
        more = f" (and {len(e.issues) - 1} more)" if len(e.issues) > 1 else ""
        if e.only_unknown_entities:
            message = f"scene file waits for entities not known yet: {first.message}{more}"
        else:
            message = f"scene file refused: {first.message}{more}{kept}"
        problems.report(f"{PROBLEM_PREFIX}{f}", "scenes", message,
                        severity="warning" if e.only_unknown_entities else "error",
                        file=first.file, line=first.line or None, details=tuple(map(str, e.issues)))

    def _problem_gone(self, f: Path) -> None:
        if self._problem_list is not None:
            self._problem_list.clear(f"{PROBLEM_PREFIX}{f}")

    def _put_home(self, f: Path, scenes: tuple[HomeScene, ...]) -> set[str]:
        """Replace the home scenes `f` held; once started, their entities and schedules follow. Returns the names
        that appeared, changed or went."""
        old = {hs.name: hs for hs in self._home_files.pop(f, ())}
        new = {hs.name: hs for hs in scenes}
        if new:
            self._home_files[f] = scenes
        for name in old.keys() - new.keys():
            del self.scenes[name]
            if self._active:
                self._retire(name)
        for name, hs in new.items():
            self.scenes[name] = hs
            if not self._active:
                continue
            if name not in old:
                self._activate(hs)
            elif _without_lines(old[name].schedules) != _without_lines(hs.schedules):
                self._stop_schedules(name)
                self._start_schedules(hs)
        return {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}

    def _rebuild_gates(self) -> None:
        """One gate per situation trigger; a trigger an edit left alone keeps its gate, and so its cooldown."""
        kept = {(hs.name, _without_line(gate.trigger)): gate for gate, hs in self._gates}
        self._gates = [(kept.get((hs.name, _without_line(t))) or SituationGate(t, self._clock), hs)
                       for hs in self.scenes.values() for t in hs.situations]

    async def async_start(self, hub: Any) -> None:
        self._hub = hub
        self.load(hub)
        self._active = True
        self.watch.start()
        self._unlisten = hub.bus.listen(EVENT_SCENE_RECOGNIZED, self._on_recognized)
        self._unlisten_entities = hub.bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry)
        for hs in self.scenes.values():
            self._activate(hs)

    def _activate(self, hs: HomeScene) -> None:
        self._register_entity(self._hub, hs.name)
        self._start_schedules(hs)

    def _start_schedules(self, hs: HomeScene) -> None:
        self._schedules[hs.name] = [asyncio.create_task(self._schedule_loop(hs, trig)) for trig in hs.schedules]

    def _stop_schedules(self, name: str) -> None:
        for task in self._schedules.pop(name, ()):
            task.cancel()

    def _retire(self, name: str) -> None:
        """A home scene gone from its file: no schedule, no command, and no ``scene.*`` entity in any API."""
        self._stop_schedules(name)
        unregister = self._unregister.pop(name, None)
        if unregister is not None:
            unregister()
        entity = self._hub.entities.get_by_unique_id(f"scene:{name}")
        if entity is not None:
            self._hub.states.async_remove(entity.entity_id)
            self._hub.entities.async_remove(entity.entity_id)

    def _on_entity_registry(self, event: Any) -> None:
        data = getattr(event, "data", event) or {}
        if not self.pending or data.get("action") != "create" or self._retry_handle is not None:
            return
        # adoption creates entities in bursts: one retry shortly after the burst, not one per entity
        self._retry_handle = asyncio.get_running_loop().call_later(self.retry_delay, self._retry_pending)

    def _retry_pending(self) -> None:
        self._retry_handle = None
        waiting = sorted(self.pending)
        self._load_files(HubCatalog(self._hub), waiting, [])
        for f in waiting:
            if f not in self.pending and f not in self._errors:
                _LOG.info("scene file %s loaded now that its entities exist", f)

    def _register_entity(self, hub: Any, name: str) -> None:
        """Each home scene is a ``scene.*`` entity, so every API (HA, stream, MQTT) can activate it."""
        entity = hub.entities.async_get_or_create(unique_id=f"scene:{name}", capabilities=("scene",), name=name)
        if hub.states.get(entity.entity_id) is None:
            hub.states.async_set(entity.entity_id, "unknown", {"friendly_name": name})
        self._unregister[name] = hub.commands.register_entity(entity.entity_id, self._scene_command(name))

    def _scene_command(self, name: str) -> Any:
        async def handle(entity: Any, command: str, args: dict[str, Any], context: Any) -> None:
            result = await self.async_activate(name, context)
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            # A count, not the entity ids: every token that sees the scene sees this state, also one that may
            # not see every target. The log names them.
            self._hub.states.async_set(entity.entity_id, stamp,
                                       {"friendly_name": name, "failed": len(result.failed)}, context)

        return handle

    async def async_stop(self) -> None:
        self._active = False
        await self.watch.stop()
        for f in [*self._errors, *self.pending]:  # no longer watched: a fix would not clear them
            self._problem_gone(f)
        for unregister in self._unregister.values():
            unregister()
        self._unregister.clear()
        tasks = [*self._tasks, *(t for ts in self._schedules.values() for t in ts)]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._schedules.clear()
        for unlisten in (self._unlisten, self._unlisten_entities):
            if callable(unlisten):
                unlisten()
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None

    async def async_activate(self, name: str, context: Any = None) -> ActivationResult:
        """Send every target command concurrently; one failing device does not stop the others.

        Activated for an API token (``context.may_control``), the scene runs only if that token may control
        every one of its targets; otherwise nothing is sent and CommandError ``unauthorized`` names the scene,
        never the targets. All or nothing, so that a scene does the same thing whoever activates it."""
        scene = self.scenes[name]
        may_control = getattr(context, "may_control", None)
        if may_control is not None and not all(may_control(t.entity_id) for t in scene.targets):
            raise CommandError("unauthorized", f"this token may not control every target of scene {name}")
        results = await asyncio.gather(
            *(
                self._hub.commands.async_call(t.entity_id, t.call.command, dict(t.call.args), context=context)
                for t in scene.targets
            ),
            return_exceptions=True,
        )
        res = ActivationResult(name, [], {})
        for t, r in zip(scene.targets, results, strict=True):
            if isinstance(r, BaseException):
                res.failed[t.entity_id] = f"{type(r).__name__}: {r}"
            else:
                res.ok.append(t.entity_id)
        if res.failed:
            _LOG.warning("scene %s: %d target(s) failed: %s", name, len(res.failed), res.failed)
        return res

    def _on_recognized(self, event: Any) -> None:
        data = getattr(event, "data", event) or {}
        label, confidence = data.get("label"), data.get("confidence")
        if not isinstance(label, str) or not isinstance(confidence, int | float):
            return
        for gate, scene in self._gates:
            if gate.offer(label, float(confidence)):
                _LOG.info("situation %r (%.2f) -> scene %s", label, confidence, scene.name)
                task = asyncio.get_running_loop().create_task(self._activate_logged(scene.name))
                self._tasks.append(task)
                task.add_done_callback(self._tasks.remove)  # finished activations must not pile up

    async def _activate_logged(self, name: str) -> None:
        try:
            await self.async_activate(name)
        except Exception:
            _LOG.exception("activating scene %s failed", name)

    async def _schedule_loop(self, scene: HomeScene, trig: ScheduleTrigger) -> None:
        zone = local_zone()
        due = next_fire(dt.datetime.now(zone), trig)
        while True:
            late = time.time() - due.timestamp()
            if late < 0:
                await asyncio.sleep(min(-late, self.schedule_step))
                continue
            if late <= SCHEDULE_GRACE:
                await self._activate_logged(scene.name)
            else:
                _LOG.warning("scene %s: skipped its %02d:%02d schedule, the clock moved %.0f s past it", scene.name,
                             trig.hour, trig.minute, late)
            # From the later of now and the fire time: a clock stepped back after firing must not fire it again.
            due = next_fire(max(dt.datetime.now(zone), due, key=lambda d: d.timestamp()), trig)


def from_config(config_dir: Path | str, config: Mapping[str, Any]) -> SceneManager:
    """The scenes component as configured: `scenes: {paths: [...]}` in configuration.yaml (relative paths are
    under the config directory); default `<config dir>/scenes/`. For hub.setup.build_hub."""
    from . import settings  # noqa: F401  (registers the section, so configuration.yaml may use it)

    section = config.get("scenes") or {}
    paths = section.get("paths") or ["scenes"]
    interval = section.get("watch_interval")
    return SceneManager([Path(config_dir) / p for p in paths],
                        watch_interval=float(interval if interval is not None else 2.0))
