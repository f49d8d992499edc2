"""What every QOAP transport's conformance run shares: the step machinery, the command plans, and the
checks that only need to read the description and state, send commands and hear state messages.

A transport (IP in kit.py, BLE in ble.py) provides those four operations as a :class:`Link`; the
checks here run the same way over either, so a fix or a stricter rule reaches both flavours at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from qilu_hub import capabilities as caps
from qilu_hub.drivers.qoap import profile

from .results import CheckResult, Report

Progress = Callable[[int, int, CheckResult], None]
Expectation = Callable[[dict[str, Any]], bool]
CheckFn = Callable[[CheckResult], Awaitable[None]]

# What ``--profile`` checks against: the current version, or 1.0 (no identity proof required).
PROFILES = {"qoap": profile.PROFILE_VERSION, "qoap-1.1": "1.1", "qoap-1.0": "1.0"}


class Fail(Exception):
    """The check failed; the message says why."""


class Skip(Exception):
    """The check could not run (a prerequisite failed); the message says which."""


@dataclass(frozen=True, slots=True)
class CommandPlan:
    command: str
    args: dict[str, Any]
    expect: Expectation
    expected: str  # for messages


def _state_is(value: str) -> Expectation:
    return lambda snap: snap.get("state") == value


def _attr_is(name: str, value: Any) -> Expectation:
    return lambda snap: (snap.get("attributes") or {}).get(name) == value


def _both(a: Expectation, b: Expectation) -> Expectation:
    return lambda snap: a(snap) and b(snap)


def plans_for(capabilities: list[str]) -> list[CommandPlan]:
    """Commands to exercise for an entity, in an order where each changes the state."""
    names = set(capabilities)
    plans: list[CommandPlan] = []
    if "thermostat" in names:
        plans += [
            CommandPlan("set_hvac_mode", {"hvac_mode": "heat"}, _state_is("heat"), "state heat"),
            CommandPlan("set_temperature", {"temperature": 21.5}, _attr_is("temperature", 21.5), "temperature 21.5"),
            CommandPlan("turn_off", {}, _state_is("off"), "state off"),
            CommandPlan("turn_on", {}, lambda s: s.get("state") not in (None, "off"), "state not off"),
        ]
    elif "fan" in names:
        plans += [
            CommandPlan("turn_on", {"percentage": 60}, _both(_state_is("on"), _attr_is("percentage", 60)), "on at 60%"),
            CommandPlan("set_percentage", {"percentage": 30}, _attr_is("percentage", 30), "percentage 30"),
            CommandPlan("turn_off", {}, _state_is("off"), "state off"),
        ]
    elif "on_off" in names:
        plans += [
            CommandPlan("turn_on", {}, _state_is("on"), "state on"),
            CommandPlan("turn_off", {}, _state_is("off"), "state off"),
            CommandPlan("toggle", {}, _state_is("on"), "state on"),
        ]
        if "level" in names:
            plans.append(CommandPlan("turn_on", {"brightness": 128}, _attr_is("brightness", 128), "brightness 128"))
    if "operational_state" in names:
        plans += [
            CommandPlan("start", {}, _state_is("running"), "state running"),
            CommandPlan("pause", {}, _state_is("paused"), "state paused"),
            CommandPlan("resume", {}, _state_is("running"), "state running"),
            CommandPlan("stop", {}, _state_is("stopped"), "state stopped"),
        ]
    if "cover_position" in names:
        plans += [
            CommandPlan("set_cover_position", {"position": 40}, _attr_is("current_position", 40), "position 40"),
            CommandPlan("open_cover", {}, lambda s: s.get("state") in ("open", "opening"), "open or opening"),
        ]
    if "lock" in names:
        plans += [
            CommandPlan("lock", {}, lambda s: s.get("state") in ("locked", "locking"), "locked"),
            CommandPlan("unlock", {}, lambda s: s.get("state") in ("unlocked", "unlocking"), "unlocked"),
        ]
    if "media_playback" in names:
        plans += [
            CommandPlan("media_play", {}, _state_is("playing"), "state playing"),
            CommandPlan("volume_set", {"volume_level": 0.3}, _attr_is("volume_level", 0.3), "volume 0.3"),
            CommandPlan("media_pause", {}, _state_is("paused"), "state paused"),
        ]
    return plans


def out_of_range(entity: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A command of ``entity`` with a numeric argument past its maximum, when it has one."""
    for command in caps.merged_commands(entity["capabilities"]).values():
        for name, spec in command.args.items():
            if spec.max is not None and spec.type in ("int", "float"):
                return command.name, {name: spec.max + 1000}
    return None


class Link(Protocol):
    """The narrow interface between the shared checks and a transport."""

    async def read_description(self) -> Any:
        """The §2 document, decoded (raises Fail when it cannot be read)."""

    async def read_state(self) -> Any:
        """The §3 document, decoded."""

    async def subscribe(self) -> None:
        """Start hearing §5 ``state`` messages (and take any snapshot that opens the stream)."""

    async def unsubscribe(self) -> None: ...

    async def next_state(self, timeout: float) -> dict[str, Any] | None:
        """The next ``state`` message heard, or None when none came within ``timeout``; ConnectionError when
        the stream ended."""

    async def command(self, key: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send one command; the §4 outcome ``{"ok": ..., "error": {...}, "state": {...}}``."""


class KitBase:
    """Runs a transport's check list in order, skipping checks whose prerequisite failed."""

    link: Link | None

    def __init__(self, target: str, profile_name: str, bound: float, progress: Progress | None) -> None:
        if profile_name not in PROFILES:
            raise ValueError(f"unknown profile {profile_name!r} (known: {', '.join(PROFILES)})")
        self.profile_name = profile_name
        self.bound = bound
        self.progress = progress
        self.report = Report(target=target, profile=f"{profile_name} {PROFILES[profile_name]}")
        self.description: dict[str, Any] | None = None
        self.link = None

    def checks(self) -> list[tuple[str, str, CheckFn]]:
        """(id, title, check) in the order they run."""
        raise NotImplementedError

    async def run(self) -> Report:
        """Run every check (with the transport's setup and teardown around them); the report."""
        raise NotImplementedError

    async def run_checks(self) -> None:
        plan = self.checks()
        for check_id, title, fn in plan:
            await self._step(check_id, title, fn, len(plan))

    async def _step(self, check_id: str, title: str, fn: CheckFn, total: int) -> None:
        result = CheckResult(check_id, title, "pass")
        started = time.monotonic()
        try:
            await fn(result)
        except Skip as skip:
            result.status, result.message = "skip", str(skip)
        except Fail as fail:
            result.status, result.message = "fail", str(fail)
        except (TimeoutError, OSError, ValueError, ConnectionError) as err:
            result.status, result.message = "fail", f"{type(err).__name__}: {err}"
        except Exception as err:  # a transport library's own error (aiohttp, bleak): a failure, not a crash
            result.status, result.message = "fail", f"{type(err).__name__}: {err}"
        if result.status == "pass" and result.details and not result.message:
            result.status, result.message = "fail", f"{len(result.details)} problem(s)"
        result.seconds = time.monotonic() - started
        self.report.results.append(result)
        if self.progress is not None:
            self.progress(len(self.report.results), total, result)

    def _need(self, check_id: str) -> None:
        prior = self.report.get(check_id)
        if prior is None or prior.status != "pass":
            raise Skip(f"needs {check_id} to pass")

    def _link(self) -> Link:
        if self.link is None:
            raise Skip("no connection to the appliance")
        return self.link

    # -- shared checks ----------------------------------------------------------------------
    def agree(self, description: dict[str, Any], result: CheckResult) -> None:
        """Transport hook: add a detail for each way the advertisement disagrees with the description."""

    async def check_description(self, result: CheckResult) -> None:
        description = await self._link().read_description()
        errors = profile.description_errors(description)
        result.details.extend(errors)
        if errors:
            raise Fail(f"{len(errors)} problem(s): {errors[0]}")
        self.description = description
        device = description["device"]
        self.report.device = {k: str(device.get(k)) for k in ("id", "name", "manufacturer", "model", "sw_version")}
        self.agree(description, result)
        if result.details:
            raise Fail(result.details[0])
        result.message = f"{len(description['entities'])} entities"

    async def check_state(self, result: CheckResult) -> None:
        self._need("description.valid")
        assert self.description is not None
        result.details.extend(state_problems(self.description, await self._link().read_state()))
        if result.details:
            raise Fail(result.details[0])
        result.message = f"{len(self.description['entities'])} entities readable"

    async def check_commands(self, result: CheckResult) -> None:
        self._need("state.readable")
        assert self.description is not None
        link = self._link()
        state = await link.read_state()
        await link.subscribe()
        count = 0
        try:
            for entity in self.description["entities"]:
                snap = (state.get("entities") or {}).get(entity["key"], {}) if isinstance(state, dict) else {}
                for plan in starting_with_a_change(plans_for(entity["capabilities"]), snap):
                    count += 1
                    problem = await round_trip(link, entity["key"], plan, self.bound)
                    if problem:
                        result.details.append(f"{entity['key']}.{plan.command}: {problem}")
        finally:
            await link.unsubscribe()
        if result.details:
            raise Fail(f"{len(result.details)} of {count} commands failed: {result.details[0]}")
        result.message = f"{count} commands round-tripped within {self.bound:g} s"


def starting_with_a_change(plans: list[CommandPlan], snap: dict[str, Any]) -> list[CommandPlan]:
    """``plans`` rotated to begin with one that changes ``snap`` (a locked lock starts with unlock), so every
    command in turn changes the state and must be notified."""
    first = next((i for i, plan in enumerate(plans) if not plan.expect(snap)), 0)
    return plans[first:] + plans[:first]


def state_problems(description: dict[str, Any], state: Any) -> list[str]:
    """What is wrong with a §3 state document for ``description``'s entities."""
    entities = state.get("entities") if isinstance(state, dict) else None
    if not isinstance(entities, dict):
        return ["state has no entities object"]
    problems: list[str] = []
    for entity in description["entities"]:
        snap = entities.get(entity["key"])
        if not isinstance(snap, dict) or "state" not in snap:
            problems.append(f"{entity['key']}: missing from the state")
            continue
        attrs = snap.get("attributes") or {}
        for problem in profile.state_errors(entity["capabilities"], snap["state"], attrs):
            problems.append(f"{entity['key']}: {problem}")
        for name in caps.merged_attributes(entity["capabilities"]):
            if name not in attrs and name != "hvac_modes":
                problems.append(f"{entity['key']}: declared attribute {name!r} is not reported")
    return problems


async def drain(link: Link) -> None:
    """Forget state messages queued before a command, so the one waited for is caused by it."""
    while await link.next_state(0.05) is not None:
        pass


async def round_trip(link: Link, key: str, plan: CommandPlan, bound: float) -> str | None:
    """Send one planned command; what went wrong (None: accepted, reflected in the state and notified)."""
    try:
        await drain(link)
        outcome = await link.command(key, plan.command, plan.args)
        if not outcome.get("ok"):
            error = outcome.get("error") or {}
            return f"refused: {error.get('code')}: {str(error.get('message'))[:200]}"
        deadline = time.monotonic() + bound
        notified = False
        while not notified and (left := deadline - time.monotonic()) > 0:
            message = await link.next_state(left)
            if message is None:
                break
            notified = message.get("entity") == key and plan.expect(message)
    except ConnectionError as err:
        return str(err)
    state = await link.read_state()
    snap = (state.get("entities") or {}).get(key, {}) if isinstance(state, dict) else {}
    if not plan.expect(snap):
        return f"expected {plan.expected}, the state shows {snap.get('state')!r} {snap.get('attributes')}"
    if not notified:
        return f"no state notification within {bound:g} s"
    return None
