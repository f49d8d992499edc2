"""The QOAP conformance kit: checks a device (or simulator) against the Qilu Open Appliance Profile 1.x.

Checks run in order; a check whose prerequisite failed is skipped, with the reason.
Every wait is bounded (``bound`` seconds for notifications), so a silent device fails
rather than hangs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgpack

from drivers.mdns_probe import browse
from drivers.qoap import profile
from hub import capabilities as caps
from hub.discovery.models import MdnsInfo

from .results import CheckResult, Report

Progress = Callable[[int, int, CheckResult], None]
Expectation = Callable[[dict[str, Any]], bool]

PROFILES = {"qoap": profile.PROFILE_VERSION, "qoap-1.0": profile.PROFILE_VERSION}


@dataclass(frozen=True, slots=True)
class CommandPlan:
    command: str
    args: dict[str, Any]
    expect: Expectation
    expected: str  # for messages


def _state_is(value: str) -> Expectation:
    return lambda snap: snap.get("state") == value


def _attr_is(name: str, value: Any) -> Expectation:
    return lambda snap: snap.get("attributes", {}).get(name) == value


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


def local_interface_for(host: str) -> str:
    """The local address that reaches ``host``: mDNS must be joined on that interface only."""
    if ipaddress.ip_address(host).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        return str(sock.getsockname()[0])


class ConformanceKit:
    def __init__(self, host: str, port: int | None = None, *, profile_name: str = "qoap", bound: float = 2.0,
                 mdns_timeout: float = 10.0, restart_timeout: float = 30.0, progress: Progress | None = None) -> None:
        if profile_name not in PROFILES:
            raise ValueError(f"unknown profile {profile_name!r} (known: {', '.join(PROFILES)})")
        self.host = host
        self.port = port
        self.profile_name = profile_name
        self.bound = bound
        self.mdns_timeout = mdns_timeout
        self.restart_timeout = restart_timeout
        self.progress = progress
        self.report = Report(target=f"{host}:{port or '?'}", profile=f"{profile_name} {PROFILES[profile_name]}")
        self.advert: MdnsInfo | None = None
        self.description: dict[str, Any] | None = None
        self.session: aiohttp.ClientSession | None = None
        self._total = 8

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def run(self) -> Report:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            await self._step("mdns.advertised", "Advertised as _qoap._tcp at the host", self.check_advertised)
            await self._step("mdns.txt_schema", "TXT record has id, model, mf, pv, caps", self.check_txt)
            await self._step("description.valid", "Description is valid in the common model", self.check_description)
            await self._step("state.readable", "Every declared entity and attribute is readable", self.check_state)
            await self._step("ws.formats", "WebSocket pushes a snapshot in JSON and msgpack", self.check_ws_formats)
            await self._step("commands.round_trip", "Every command changes state and notifies", self.check_commands)
            await self._step("bad_input.rejected", "Bad inputs are rejected without a crash", self.check_bad_input)
            await self._step("restart.reconnect", "The device comes back after a restart", self.check_restart)
        finally:
            await self.session.close()
        self.report.target = f"{self.host}:{self.port or '?'}"
        return self.report

    async def _step(self, check_id: str, title: str, fn: Callable[[CheckResult], Awaitable[None]]) -> None:
        result = CheckResult(check_id, title, "pass")
        started = time.monotonic()
        try:
            await fn(result)
        except _Skip as skip:
            result.status, result.message = "skip", str(skip)
        except _Fail as fail:
            result.status, result.message = "fail", str(fail)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
            result.status, result.message = "fail", f"{type(err).__name__}: {err}"
        if result.status == "pass" and result.details and not result.message:
            result.status, result.message = "fail", f"{len(result.details)} problem(s)"
        result.seconds = time.monotonic() - started
        self.report.results.append(result)
        if self.progress is not None:
            self.progress(len(self.report.results), self._total, result)

    def _need(self, check_id: str) -> None:
        prior = self.report.get(check_id)
        if prior is None or prior.status != "pass":
            raise _Skip(f"needs {check_id} to pass")

    # -- checks -----------------------------------------------------------------------------
    async def check_advertised(self, result: CheckResult) -> None:
        def ours(info: MdnsInfo) -> bool:
            return self.host in info.addresses and (self.port is None or info.port == self.port)

        infos = await browse(profile.MDNS_TYPE, interface=local_interface_for(self.host), timeout=self.mdns_timeout,
                             expect=1000, until=ours)
        mine = [i for i in infos if ours(i)]
        if not mine:
            seen = ", ".join(f"{i.name}@{i.host}:{i.port}" for i in infos) or "none"
            raise _Fail(f"no _qoap._tcp service advertises {self.host}{f':{self.port}' if self.port else ''}"
                        f" within {self.mdns_timeout:g} s (seen: {seen})")
        self.advert = mine[0]
        self.port = self.advert.port
        result.message = f"{self.advert.name} at {self.host}:{self.port}"

    async def check_txt(self, result: CheckResult) -> None:
        self._need("mdns.advertised")
        assert self.advert is not None
        errors = profile.txt_errors(self.advert.properties)
        if errors:
            raise _Fail("; ".join(errors))
        result.message = f"pv={self.advert.properties['pv']} caps={self.advert.properties['caps']}"

    async def _get(self, path: str) -> Any:
        assert self.session is not None
        async with self.session.get(self.base + path) as resp:
            if resp.status != 200:
                raise _Fail(f"GET {path} answered HTTP {resp.status}")
            return await resp.json(content_type=None)

    async def check_description(self, result: CheckResult) -> None:
        if self.port is None:
            raise _Skip("no port: not advertised and none given")
        description = await self._get(profile.DESCRIPTION_PATH)
        errors = profile.description_errors(description)
        result.details.extend(errors)
        if errors:
            raise _Fail(f"{len(errors)} problem(s): {errors[0]}")
        self.description = description
        device = description["device"]
        self.report.device = {k: str(device.get(k)) for k in ("id", "name", "manufacturer", "model", "sw_version")}
        if self.advert is not None:
            props = self.advert.properties
            if props.get("id") != device["id"]:
                result.details.append(f"TXT id {props.get('id')!r} differs from description id {device['id']!r}")
            if props.get("model") != device["model"]:
                result.details.append(f"TXT model {props.get('model')!r} differs from {device['model']!r}")
            if props.get("caps") != profile.caps_summary(description):
                result.details.append(f"TXT caps {props.get('caps')!r} differs from the description's "
                                      f"{profile.caps_summary(description)!r}")
            if result.details:
                raise _Fail(result.details[0])
        result.message = f"{len(description['entities'])} entities"

    async def check_state(self, result: CheckResult) -> None:
        self._need("description.valid")
        assert self.description is not None
        state = await self._get(profile.STATE_PATH)
        entities = state.get("entities") if isinstance(state, dict) else None
        if not isinstance(entities, dict):
            raise _Fail("state has no entities object")
        for entity in self.description["entities"]:
            snap = entities.get(entity["key"])
            if not isinstance(snap, dict) or "state" not in snap:
                result.details.append(f"{entity['key']}: missing from /qoap/state")
                continue
            attrs = snap.get("attributes") or {}
            for problem in profile.state_errors(entity["capabilities"], snap["state"], attrs):
                result.details.append(f"{entity['key']}: {problem}")
            for name in caps.merged_attributes(entity["capabilities"]):
                if name not in attrs and name != "hvac_modes":
                    result.details.append(f"{entity['key']}: declared attribute {name!r} is not reported")
        if result.details:
            raise _Fail(result.details[0])
        result.message = f"{len(self.description['entities'])} entities readable"

    async def _ws(self, fmt: str = "json") -> aiohttp.ClientWebSocketResponse:
        assert self.session is not None
        return await self.session.ws_connect(f"{self.base}{profile.WS_PATH}?format={fmt}", heartbeat=20)

    async def check_ws_formats(self, result: CheckResult) -> None:
        self._need("description.valid")
        for fmt in ("json", "msgpack"):
            ws = await self._ws(fmt)
            try:
                msg = await ws.receive(timeout=self.bound)
                if fmt == "json" and msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                elif fmt == "msgpack" and msg.type == aiohttp.WSMsgType.BINARY:
                    data = msgpack.unpackb(msg.data)
                else:
                    raise _Fail(f"{fmt}: first frame is {msg.type.name}, expected a "
                                f"{'text' if fmt == 'json' else 'binary'} snapshot")
                if data.get("type") != "snapshot" or not isinstance(data.get("entities"), dict):
                    raise _Fail(f"{fmt}: first message is not a snapshot")
            finally:
                await ws.close()
        result.message = "snapshot received in both formats"

    async def check_commands(self, result: CheckResult) -> None:
        self._need("state.readable")
        assert self.description is not None and self.session is not None
        ws = await self._ws("json")
        try:
            await ws.receive(timeout=self.bound)  # snapshot
            count = 0
            for entity in self.description["entities"]:
                for plan in plans_for(entity["capabilities"]):
                    count += 1
                    problem = await self._round_trip(ws, entity["key"], plan)
                    if problem:
                        result.details.append(f"{entity['key']}.{plan.command}: {problem}")
        finally:
            await ws.close()
        if result.details:
            raise _Fail(f"{len(result.details)} of {count} commands failed: {result.details[0]}")
        result.message = f"{count} commands round-tripped within {self.bound:g} s"

    async def _round_trip(self, ws: aiohttp.ClientWebSocketResponse, key: str, plan: CommandPlan) -> str | None:
        assert self.session is not None
        # Drain pushes queued before the command, so the one we wait for is caused by it.
        while True:
            try:
                await ws.receive(timeout=0.05)
            except TimeoutError:
                break
        body = {"entity": key, "command": plan.command, "args": plan.args}
        async with self.session.post(self.base + profile.COMMAND_PATH, json=body) as resp:
            if resp.status >= 300:
                return f"HTTP {resp.status}: {(await resp.text())[:200]}"
        deadline = time.monotonic() + self.bound
        notified = False
        while not notified and (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return "WebSocket closed"
                continue
            data = json.loads(msg.data)
            if data.get("type") == "state" and data.get("entity") == key and plan.expect(data):
                notified = True
        state = await self._get(profile.STATE_PATH)
        snap = state["entities"].get(key, {})
        if not plan.expect(snap):
            return f"expected {plan.expected}, /qoap/state shows {snap.get('state')!r} {snap.get('attributes')}"
        if not notified:
            return f"no state notification on the WebSocket within {self.bound:g} s"
        return None

    async def _alive(self) -> bool:
        assert self.session is not None
        try:
            async with self.session.get(self.base + profile.DESCRIPTION_PATH,
                                        timeout=aiohttp.ClientTimeout(total=self.bound)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def check_bad_input(self, result: CheckResult) -> None:
        self._need("description.valid")
        assert self.description is not None and self.session is not None
        entity = self.description["entities"][0]
        key = entity["key"]
        commanded = next((e for e in self.description["entities"] if caps.merged_commands(e["capabilities"])), entity)
        command_name = next(iter(caps.merged_commands(commanded["capabilities"])), "turn_on")
        cases: list[tuple[str, bytes, str]] = [
            ("malformed JSON", b"{not json", "application/json"),
            ("not an object", b"[1, 2, 3]", "application/json"),
            ("unknown entity", json.dumps({"entity": "no_such_entity", "command": "turn_on"}).encode(),
             "application/json"),
            ("unknown command", json.dumps({"entity": key, "command": "self_destruct"}).encode(), "application/json"),
            ("wrong argument type", json.dumps({"entity": commanded["key"], "command": command_name,
                                                "args": {"no_such_argument": "x" * 300}}).encode(),
             "application/json"),
            ("huge body", b'{"entity": "' + b"a" * 200_000 + b'"}', "application/json"),
        ]
        range_case = _out_of_range(commanded)
        if range_case is not None:
            cases.append(("argument out of range", json.dumps(range_case).encode(), "application/json"))
        for label, payload, content_type in cases:
            try:
                async with self.session.post(self.base + profile.COMMAND_PATH, data=payload,
                                             headers={"Content-Type": content_type}) as resp:
                    status = resp.status
                    text = await resp.text()
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                status, text = 0, f"{type(err).__name__}"
            if not 400 <= status < 500:
                result.details.append(f"{label}: expected HTTP 4xx with an error object, got "
                                      f"{status or 'no answer'} {text[:80]!r}")
            elif status != 413:
                try:
                    error = json.loads(text).get("error")
                except (ValueError, AttributeError):
                    error = None
                if not isinstance(error, dict) or not error.get("code"):
                    result.details.append(f"{label}: 4xx without an {{error: {{code, message}}}} body")
            if not await self._alive():
                result.details.append(f"device stopped answering after {label}")
                raise _Fail(f"device stopped answering after {label} (crashed?)")
        if result.details:
            raise _Fail(result.details[0])
        result.message = f"{len(cases)} bad requests rejected; device still answers"

    async def check_restart(self, result: CheckResult) -> None:
        self._need("description.valid")
        if not await self._alive():
            raise _Skip("device is not answering before the restart")
        assert self.session is not None
        ws = await self._ws("json")
        await ws.receive(timeout=self.bound)
        async with self.session.post(self.base + profile.RESTART_PATH) as resp:
            if resp.status not in (200, 202):
                raise _Fail(f"POST {profile.RESTART_PATH} answered HTTP {resp.status}")
        started = time.monotonic()
        try:
            msg = await ws.receive(timeout=self.restart_timeout)
            while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                msg = await ws.receive(timeout=self.restart_timeout)
        except TimeoutError:
            raise _Fail("the WebSocket stayed open: the device did not restart") from None
        finally:
            await ws.close()
        # The device may still answer for a moment after closing its sockets, before it goes down: so "back"
        # means a new WebSocket that delivers a snapshot, retried until the restart timeout.
        while True:
            if time.monotonic() - started > self.restart_timeout:
                raise _Fail(f"device did not answer within {self.restart_timeout:g} s of the restart")
            if not await self._alive():
                await asyncio.sleep(0.2)
                continue
            try:
                ws = await self._ws("json")
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
                continue
            try:
                msg = await ws.receive(timeout=self.bound)
            finally:
                await ws.close()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                await asyncio.sleep(0.2)  # caught the old server on its way down
                continue
            if msg.type != aiohttp.WSMsgType.TEXT or json.loads(msg.data).get("type") != "snapshot":
                raise _Fail("after the restart the WebSocket does not send a snapshot")
            break
        back = time.monotonic() - started

        def ours(info: MdnsInfo) -> bool:
            return self.host in info.addresses and info.port == self.port

        infos = await browse(profile.MDNS_TYPE, interface=local_interface_for(self.host), timeout=self.mdns_timeout,
                             expect=1000, until=ours)
        if not any(ours(i) for i in infos):
            raise _Fail("after the restart the device is no longer advertised")
        result.message = f"back after {back:.1f} s, snapshot and advertisement OK"


def _out_of_range(entity: dict[str, Any]) -> dict[str, Any] | None:
    for command in caps.merged_commands(entity["capabilities"]).values():
        for name, spec in command.args.items():
            if spec.max is not None and spec.type in ("int", "float"):
                return {"entity": entity["key"], "command": command.name, "args": {name: spec.max + 1000}}
    return None


class _Fail(Exception):
    pass


class _Skip(Exception):
    pass
