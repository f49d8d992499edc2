"""The conformance kit over Matter: commission an appliance through matter-server and check what it declares.

For appliance makers building Matter products, before they pay for certification: ``qilu-hub firmware-test
--matter CODE`` commissions the appliance with its setup code (through a matter-server at ``url``, or one the
kit starts from ``venv`` with a throw-away fabric), then checks, per endpoint and declared device type:

* ``basic.information``: vendor and product names and ids, serial number, unique id and software version are
  there and of the right types (a hub merges the appliance with its other protocols by them);
* ``descriptor.mandatory_clusters``: every declared device type's mandatory server clusters are present;
* ``attributes.types``: the values a hub reads have their specified types (a boolean sent as an integer, a
  number as a string: a hub's mapping would misread them);
* ``onoff.toggle``: a Toggle changes OnOff (read back) and the change is reported on the subscription (an
  appliance that accepts the subscription but stays silent fails here);
* ``level.bounds``: a move to the highest level stays within MinLevel..MaxLevel;
* ``level.transition``: a MoveToLevelWithOnOff over ``TRANSITION_S`` seconds is followed: the level read back a
  quarter of the way through is not the target yet (judged when that read is answered within three quarters of
  the transition), and the target is reported on the subscription within the transition time plus ``bound``; the
  levels reported on the way are listed;
* ``measurement.range``: measured values lie within their declared minimum and maximum;
* ``measurement.units``: measured values (and their declared minimum and maximum) are values the specification's
  unit can mean (humidity at most 10000 hundredths of a percent, ...), and, for each ``references`` entry (the
  command line's ``--reference temperature=21.5±1.5``), the reading decoded in that unit matches the reference;
  a mismatch names the scaling the reading would match (whole °C instead of 0.01 °C, ...). A quantity without a
  reference is reported as not judged (the check is skipped unless every measured quantity had one);
* ``restart.state``: after a restart (``restart``: a coroutine function that power-cycles the appliance; the
  command line's ``--restart-command``) OnOff and CurrentLevel are what they were, as their non-volatile quality
  requires, unless StartUpOnOff / StartUpCurrentLevel ask for something else;
* ``restart.subscription``: after the restart a Toggle is still reported on the subscription made before it.

Then it removes the appliance from the kit's fabric. The results are the QOAP kit's :class:`Report` (text,
JUnit XML, HTML).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .matter_units import BY_CLUSTER, UNITS, Reference, Unit, judge, outside_limits
from .results import CheckResult, Report

Progress = Callable[[int, int, CheckResult], None]

# Device type id -> (name, mandatory server clusters), Matter Device Library Specification
DEVICE_TYPES: dict[int, tuple[str, frozenset[int]]] = {
    0x0100: ("On/Off Light", frozenset({0x0003, 0x0004, 0x0006})),
    0x0101: ("Dimmable Light", frozenset({0x0003, 0x0004, 0x0006, 0x0008})),
    0x010C: ("Color Temperature Light", frozenset({0x0003, 0x0004, 0x0006, 0x0008, 0x0300})),
    0x010A: ("On/Off Plug-in Unit", frozenset({0x0003, 0x0004, 0x0006})),
    0x0015: ("Contact Sensor", frozenset({0x0003, 0x0045})),
    0x0107: ("Occupancy Sensor", frozenset({0x0003, 0x0406})),
    0x0302: ("Temperature Sensor", frozenset({0x0003, 0x0402})),
    0x0307: ("Humidity Sensor", frozenset({0x0003, 0x0405})),
    0x0301: ("Thermostat", frozenset({0x0003, 0x0201})),
    0x000A: ("Door Lock", frozenset({0x0003, 0x0101})),
    0x0202: ("Window Covering", frozenset({0x0003, 0x0102})),
}
# "cluster/attribute" -> its name and the Python types its value may have (None: the attribute is nullable), as
# matter-server decodes the TLV: booleans as bool, integers and enums as int, strings as str
ATTRIBUTE_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "6/0": ("OnOff", (bool,)), "8/0": ("CurrentLevel", (int, type(None))), "8/2": ("MinLevel", (int,)),
    "8/3": ("MaxLevel", (int,)), "69/0": ("StateValue", (bool,)), "1026/0": ("MeasuredValue", (int, type(None))),
    "1029/0": ("MeasuredValue", (int, type(None))), "513/0": ("LocalTemperature", (int, type(None))),
    "1030/0": ("Occupancy", (int,)),
}
TRANSITION_S = 2.0  # the transition level.transition asks for (whole tenths: the command's unit)
MEASUREMENTS = (0x0402, 0x0405, 0x0400, 0x0403, 0x0404)  # MeasuredValue 0, MinMeasuredValue 1, MaxMeasuredValue 2
BASIC = {1: ("vendor name", str), 2: ("vendor id", int), 3: ("product name", str), 4: ("product id", int),
         9: ("software version", int), 15: ("serial number", str), 18: ("unique id", str)}


def _is_of(value: Any, kinds: tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``kinds``; a bool is no int here (Python says it is, TLV does not)."""
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class MatterConformanceKit:
    def __init__(self, code: str, *, url: str | None = None, venv: Path | None = None, port: int = 5580,
                 primary_interface: str | None = None, paa_root_cert_dir: Path | None = None, bound: float = 2.0,
                 progress: Progress | None = None, restart: Callable[[], Awaitable[Any]] | None = None,
                 back_within: float = 60.0, references: list[Reference] | None = None) -> None:
        self.code = code
        self.url = url
        self.venv = venv
        self.port = port
        self.primary_interface = primary_interface
        self.paa_root_cert_dir = paa_root_cert_dir
        self.bound = bound
        self.progress = progress
        self.restart = restart
        self.back_within = back_within  # how long a restarted appliance may take to answer again
        self.references = list(references or [])  # what the maker knows the measured quantities to be
        self.report = Report(target="Matter appliance", profile="matter")
        self.client: Any = None
        self.node_id: int | None = None
        self.attributes: dict[str, Any] = {}
        self.reports: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()  # (attribute path, value) as reported
        self._watched: set[str] = set()

    async def run(self) -> Report:
        from qilu_hub.matter.codes import SetupCodeError, parse_setup_code

        try:
            parse_setup_code(self.code)
        except SetupCodeError as err:
            self.report.results.append(CheckResult("commission", "Commission with the setup code", "fail", str(err)))
            return self.report
        with tempfile.TemporaryDirectory(prefix="qilu-matter-kit-") as tmp:
            server = None
            try:
                if self.url is None:
                    server = await self._start_server(Path(tmp))
                await self._run_checks(self.url or f"ws://127.0.0.1:{self.port}/ws")
            finally:
                if server is not None:
                    await server.async_stop()
        return self.report

    async def _start_server(self, folder: Path) -> Any:
        from qilu_hub.matter.server import ManagedServer
        from qilu_hub.matter.settings import MatterSettings

        settings = MatterSettings(server="managed", venv=self.venv, port=self.port,
                                  primary_interface=self.primary_interface, paa_root_cert_dir=self.paa_root_cert_dir)
        server = ManagedServer(settings, folder)
        await server.async_start()
        return server

    async def _run_checks(self, url: str) -> None:
        import aiohttp
        from matter_server.common.models import EventType

        from qilu_hub.matter.client import client_class

        async with aiohttp.ClientSession() as session:
            # matter-server's client stops listening at a value its typed node model refuses (OnOff as an integer);
            # this one leaves such a value out of the model and hands it here, and the kit judges it
            self.client = client = client_class()(url, session, on_refused=self._on_refused)
            await client.connect()
            ready = asyncio.Event()
            listening = asyncio.get_running_loop().create_task(client.start_listening(ready))
            await asyncio.wait_for(ready.wait(), 60)
            checks: list[tuple[str, str, Callable[[CheckResult], Awaitable[None]]]] = [
                ("commission", "Commission with the setup code", self.check_commission),
                ("basic.information", "Basic Information is complete", self.check_basic),
                ("descriptor.mandatory_clusters", "Each device type's mandatory clusters", self.check_clusters),
                ("attributes.types", "Attribute values have their specified types", self.check_types),
                ("onoff.toggle", "Toggle changes OnOff and is reported", self.check_toggle),
                ("level.bounds", "Level stays within MinLevel..MaxLevel", self.check_level),
                ("level.transition", "A level transition is followed and its end reported", self.check_transition),
                ("measurement.range", "Measured values within their declared range", self.check_ranges),
                ("measurement.units", "Measured values in the specification's units", self.check_units),
                ("restart.state", "OnOff and CurrentLevel survive a restart", self.check_restart_state),
                ("restart.subscription", "Reports still come after a restart", self.check_restart_subscription),
            ]
            try:
                for index, (check_id, title, check) in enumerate(checks, 1):
                    await self._step(check_id, title, check, index, len(checks))
                    if check_id == "commission" and self.node_id is None:
                        break
                if self.node_id is not None:
                    unsubscribe = client.subscribe_events(lambda _e, _v: None, EventType.NODE_REMOVED)
                    with contextlib.suppress(Exception):
                        await client.remove_node(self.node_id)  # leave the appliance as it came
                    unsubscribe()
            finally:
                listening.cancel()
                with contextlib.suppress(Exception):
                    await client.disconnect()

    async def _step(self, check_id: str, title: str, check: Callable[[CheckResult], Awaitable[None]], index: int,
                    total: int) -> None:
        result = CheckResult(check_id, title, "pass")
        started = time.monotonic()
        try:
            await check(result)
        except Fail as err:
            result.status, result.message = "fail", str(err)
        except Skip as err:
            result.status, result.message = "skip", str(err)
        except Exception as err:  # the appliance or the server failed in a way no check foresaw
            result.status, result.message = "fail", f"{type(err).__name__}: {err}"
        result.seconds = time.monotonic() - started
        self.report.results.append(result)
        if self.progress is not None:
            self.progress(index, total, result)

    def _endpoints(self) -> list[int]:
        return sorted({int(path.split("/", 1)[0]) for path in self.attributes} - {0})

    def _servers(self, endpoint: int) -> set[int]:
        return {int(c) for c in self.attributes.get(f"{endpoint}/29/1") or []}

    # -- checks --------------------------------------------------------------------------------------------
    async def check_commission(self, result: CheckResult) -> None:
        node = await asyncio.wait_for(self.client.commission_with_code(self.code, network_only=True), 120)
        self.node_id = int(node.node_id)
        self.attributes = dict(node.attributes)  # as the server decoded them, before any typed model
        result.message = f"node {self.node_id}, {len(self._endpoints())} endpoints"

    def _on_refused(self, node_id: int, path: str, value: Any) -> None:
        if node_id == self.node_id and path in self._watched:
            self.reports.put_nowait((path, value))

    def _watch(self, path: str) -> None:
        """Queue the server's updates of ``path`` in :attr:`reports` from now on. matter-server sends an update
        for every reported change, and also when one of its reads finds a new value: a check waiting for a report
        reads nothing of ``path`` meanwhile."""
        from matter_server.common.models import EventType

        if path in self._watched:
            return
        self._watched.add(path)

        def on_update(_event: Any, value: Any) -> None:
            self.reports.put_nowait((path, value))

        self.client.subscribe_events(on_update, EventType.ATTRIBUTE_UPDATED, node_filter=self.node_id,
                                     attr_path_filter=path)

    async def check_basic(self, result: CheckResult) -> None:
        problems = []
        for attribute, (what, kind) in BASIC.items():
            value = self.attributes.get(f"0/40/{attribute}")
            if value is None or value == "":
                problems.append(f"{what} (0x0028/{attribute}) missing")
            elif not isinstance(value, kind) or isinstance(value, bool):
                problems.append(f"{what} is {type(value).__name__}, not {kind.__name__}")
        result.details.append(f"vendor: {self.attributes.get('0/40/1')}, product: {self.attributes.get('0/40/3')}")
        if problems:
            raise Fail("; ".join(problems))

    async def check_clusters(self, result: CheckResult) -> None:
        problems, checked = [], 0
        for endpoint in self._endpoints():
            servers = self._servers(endpoint)
            for entry in self.attributes.get(f"{endpoint}/29/0") or []:
                device_type = entry.get("0") if isinstance(entry, dict) else None
                known = DEVICE_TYPES.get(device_type) if isinstance(device_type, int) else None
                if known is None:
                    continue
                checked += 1
                missing = known[1] - servers
                if missing:
                    problems.append(f"endpoint {endpoint} ({known[0]}) lacks clusters "
                                    + ", ".join(f"0x{c:04X}" for c in sorted(missing)))
                else:
                    result.details.append(f"endpoint {endpoint}: {known[0]}")
        if problems:
            raise Fail("; ".join(problems))
        if not checked:
            raise Skip("no device type the kit knows")

    async def check_types(self, result: CheckResult) -> None:
        problems = []
        checked = 0
        for path, value in self.attributes.items():
            endpoint, rest = path.split("/", 1)
            known = ATTRIBUTE_TYPES.get(rest)
            if known is None or endpoint == "0":
                continue
            name, kinds = known
            checked += 1
            if not _is_of(value, kinds):
                wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
                problems.append(f"{path} ({name}) is {type(value).__name__} {value!r}, not {wanted}")
        if problems:
            raise Fail("; ".join(problems))
        result.details.append(f"{checked} attribute values checked")

    async def _read(self, path: str) -> Any:
        values = await self.client.read_attribute(self.node_id, path)
        return values.get(path) if isinstance(values, dict) else None

    async def check_toggle(self, result: CheckResult) -> None:
        endpoints = [e for e in self._endpoints() if 6 in self._servers(e)]
        if not endpoints:
            raise Skip("no On/Off cluster")
        for endpoint in endpoints:
            await self._toggle_reported(endpoint, result)

    async def _toggle_reported(self, endpoint: int, result: CheckResult, within: float | None = None) -> None:
        from matter_server.common.models import APICommand

        path = f"{endpoint}/6/0"
        self._watch(path)
        before = await self._read(path)
        await asyncio.sleep(1.1)  # past matter-server's 1 s minimum report interval
        self._drain()
        await self.client.send_command(APICommand.DEVICE_COMMAND, node_id=self.node_id, endpoint_id=endpoint,
                                       cluster_id=6, command_name="Toggle", payload={})
        started = time.monotonic()
        reported = await self._wait_report(path, lambda value: value != before, within or self.bound)
        waited = time.monotonic() - started
        after = await self._read(path)
        if after == before:
            raise Fail(f"endpoint {endpoint}: Toggle was accepted but OnOff stayed {before}")
        if not reported:
            raise Fail(f"endpoint {endpoint}: OnOff changed to {after} (read back) but no report of it came within "
                       f"{within or self.bound:g} s on the subscription")
        if not isinstance(reported[-1], bool):
            raise Fail(f"endpoint {endpoint}: OnOff was reported as {type(reported[-1]).__name__} "
                       f"{reported[-1]!r}, not a boolean")
        result.details.append(f"endpoint {endpoint}: {before} -> {after}, reported after {waited:.2f} s")

    def _drain(self) -> None:
        while not self.reports.empty():
            self.reports.get_nowait()

    async def _wait_report(self, path: str, wanted: Callable[[Any], bool], within: float) -> list[Any]:
        """The values reported for ``path`` until one is ``wanted`` (the last), or [] if none is within ``within``
        seconds."""
        deadline = time.monotonic() + within
        seen: list[Any] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                reported_path, value = await asyncio.wait_for(self.reports.get(), left)
            except TimeoutError:
                return []
            if reported_path != path:
                continue
            seen.append(value)
            if wanted(value):
                return seen
        return []

    async def check_level(self, result: CheckResult) -> None:
        from matter_server.common.models import APICommand

        endpoints = [e for e in self._endpoints() if 8 in self._servers(e)]
        if not endpoints:
            raise Skip("no Level Control cluster")
        for endpoint in endpoints:
            low, high = self.attributes.get(f"{endpoint}/8/2", 1), self.attributes.get(f"{endpoint}/8/3", 254)
            await self.client.send_command(APICommand.DEVICE_COMMAND, node_id=self.node_id, endpoint_id=endpoint,
                                           cluster_id=8, command_name="MoveToLevelWithOnOff",
                                           payload={"level": 254, "transitionTime": 0, "optionsMask": 0,
                                                    "optionsOverride": 0})
            level = await self._read(f"{endpoint}/8/0")
            if not _is_of(level, (int,)):
                raise Fail(f"endpoint {endpoint}: CurrentLevel is {type(level).__name__} {level!r}, not an integer")
            if not low <= level <= high:
                raise Fail(f"endpoint {endpoint}: CurrentLevel {level!r} outside {low}..{high}")
            result.details.append(f"endpoint {endpoint}: level {level} within {low}..{high}")

    async def check_transition(self, result: CheckResult) -> None:
        endpoints = [e for e in self._endpoints() if 8 in self._servers(e)]
        if not endpoints:
            raise Skip("no Level Control cluster")
        for endpoint in endpoints:
            await self._transition(endpoint, result)

    async def _transition(self, endpoint: int, result: CheckResult) -> None:
        path = f"{endpoint}/8/0"
        low, high = self.attributes.get(f"{endpoint}/8/2", 1), self.attributes.get(f"{endpoint}/8/3", 254)
        if not isinstance(low, int) or not isinstance(high, int) or high - low < 4:
            raise Fail(f"endpoint {endpoint}: MinLevel {low!r} and MaxLevel {high!r} leave no room for a transition")
        start, target = low + (high - low) // 4, high - (high - low) // 4
        self._watch(path)
        # From a known level, at once (and on: a level command without OnOff is ignored while off)
        await self._command(endpoint, 8, "MoveToLevelWithOnOff", {"level": start, "transitionTime": 0,
                                                                  "optionsMask": 0, "optionsOverride": 0})
        if (level := await self._read(path)) != start:
            raise Fail(f"endpoint {endpoint}: a move to level {start} without transition left CurrentLevel at "
                       f"{type(level).__name__} {level!r}")
        await asyncio.sleep(1.1)  # past matter-server's 1 s minimum report interval
        self._drain()
        sent = time.monotonic()
        await self._command(endpoint, 8, "MoveToLevelWithOnOff", {
            "level": target, "transitionTime": round(TRANSITION_S * 10), "optionsMask": 0, "optionsOverride": 0})
        # A quarter of the way the level must not be at the target yet. Judged only when the read's answer came
        # well before the end (a slow round trip says nothing); matter-server passes this read on as an update,
        # so its value is left out of the levels reported on the way.
        await asyncio.sleep(max(0.0, sent + TRANSITION_S / 4 - time.monotonic()))
        midway = await self._read(path)
        answered = time.monotonic() - sent
        if midway == target and answered < TRANSITION_S * 0.75:
            raise Fail(f"endpoint {endpoint}: CurrentLevel was already at the target {target} {answered:.2f} s into "
                       f"a {TRANSITION_S:g} s transition from {start} (jumped instead of following TransitionTime)")
        if midway == target:  # a slow read: the server has the target from it and drops the report as no change
            result.details.append(f"endpoint {endpoint}: at the target {target} when read {answered:.2f} s into the "
                                  "transition (too late to judge; its report cannot be told from the read)")
            return
        within = TRANSITION_S + self.bound
        reported = await self._wait_report(path, lambda value: value == target, sent + within - time.monotonic())
        took = time.monotonic() - sent
        if not reported:
            last = await self._read(path)
            raise Fail(f"endpoint {endpoint}: no report of the target level {target} within {within:g} s of a "
                       f"{TRANSITION_S:g} s transition from {start} (CurrentLevel now {last!r})")
        on_the_way = [value for value in reported[:-1] if value != midway]
        result.details.append(
            f"endpoint {endpoint}: {start} -> {target} over {TRANSITION_S:g} s: {midway!r} after {answered:.2f} s "
            f"(read), target reported after {took:.2f} s, reported on the way: "
            + (", ".join(map(repr, on_the_way)) or "none"))

    async def check_ranges(self, result: CheckResult) -> None:
        problems, checked = [], 0
        for endpoint in self._endpoints():
            for cluster in MEASUREMENTS:
                if cluster not in self._servers(endpoint):
                    continue
                value, low, high = (self.attributes.get(f"{endpoint}/{cluster}/{a}") for a in (0, 1, 2))
                checked += 1
                if value is None:
                    continue  # null: no measurement yet, allowed
                if (isinstance(low, int) and value < low) or (isinstance(high, int) and value > high):
                    problems.append(f"endpoint {endpoint} cluster 0x{cluster:04X}: {value} outside {low}..{high}")
        if problems:
            raise Fail("; ".join(problems))
        if not checked:
            raise Skip("no measurement cluster")

    def _measured(self) -> list[tuple[int, Unit]]:
        """Every (endpoint, unit) whose cluster and measured attribute the appliance has (the server's interview
        read them all), endpoint 0 included (Power Source; a mains-powered one has no BatPercentRemaining)."""
        endpoints = sorted({int(path.split("/", 1)[0]) for path in self.attributes})
        return [(endpoint, unit) for endpoint in endpoints for cluster, unit in sorted(BY_CLUSTER.items())
                if cluster in self._servers(endpoint) and f"{endpoint}/{cluster}/{unit.attribute}" in self.attributes]

    async def check_units(self, result: CheckResult) -> None:
        measured = self._measured()
        problems: list[str] = []
        unjudged: list[str] = []
        used: set[Reference] = set()
        for endpoint, unit in measured:
            for attribute in unit.range_attributes or ():
                name = "MinMeasuredValue" if attribute == 1 else "MaxMeasuredValue"
                limit = outside_limits(unit, name, self.attributes.get(f"{endpoint}/{unit.cluster}/{attribute}"))
                if limit is not None:
                    problems.append(f"endpoint {endpoint}: {limit}")
            # The reading now (a reference describes the conditions while the kit runs), as the server decodes it
            path = f"{endpoint}/{unit.cluster}/{unit.attribute}"
            with contextlib.suppress(Exception):  # unanswered: the value from commissioning is recent enough
                self.attributes[path] = await self._read(path)
            reference = next((r for r in self.references if r.quantity == unit.quantity and r.endpoint == endpoint),
                             None) or next((r for r in self.references
                                            if r.quantity == unit.quantity and r.endpoint is None), None)
            if reference is not None:
                used.add(reference)
            judgement = judge(unit, endpoint, unit.raw_value(self.attributes, endpoint), reference)
            result.details.append(judgement.note)
            if judgement.problem is not None:
                problems.append(judgement.problem)
            elif not judgement.judged_scale:
                unjudged.append(f"{unit.quantity} (endpoint {endpoint})")
        for reference in self.references:
            if reference not in used:
                where = "no endpoint has" if reference.endpoint is None else f"endpoint {reference.endpoint} has no"
                unit = UNITS[reference.quantity]
                problems.append(f"a reference for {reference.quantity} was given, but {where} "
                                f"{unit.cluster_name} (0x{unit.cluster:04X}) {unit.attribute_name}")
        if problems:
            raise Fail("; ".join(problems))
        if not measured:
            raise Skip("no measured quantity whose unit the kit knows")
        if unjudged:
            raise Skip("within the specification's limits; the scale of " + ", ".join(unjudged) + " not judged: "
                       "only a reference tells 0.21 °C from 21 °C (--reference QUANTITY=VALUE±TOLERANCE)")
        result.message = f"{len(measured)} reading(s) match their references"

    # -- restart -------------------------------------------------------------------------------------------
    async def _command(self, endpoint: int, cluster: int, name: str, payload: dict[str, Any]) -> None:
        from matter_server.common.models import APICommand

        await self.client.send_command(APICommand.DEVICE_COMMAND, node_id=self.node_id, endpoint_id=endpoint,
                                       cluster_id=cluster, command_name=name, payload=payload)

    async def _restart_and_wait(self) -> float:
        """Restart the appliance, then read until it answers again; seconds until it did."""
        assert self.restart is not None
        started = time.monotonic()
        await self.restart()
        deadline = started + self.back_within
        while True:
            try:
                await asyncio.wait_for(self._read("0/40/9"), max(0.5, min(10.0, deadline - time.monotonic())))
                return time.monotonic() - started
            except Exception as err:  # not back yet: the server's session with it is being set up again
                if time.monotonic() >= deadline:
                    raise Fail(f"no answer within {self.back_within:g} s of the restart ({err})") from err
                await asyncio.sleep(0.5)

    async def check_restart_state(self, result: CheckResult) -> None:
        if self.restart is None:
            raise Skip("no way to restart the appliance was given (--restart-command)")
        expected: dict[str, Any] = {}
        for endpoint in self._endpoints():
            servers = self._servers(endpoint)
            # Put it in a state unlike a fresh one: on, at a level away from where it is; what was asked is
            # what must come back, unless a StartUp attribute tells the appliance to start otherwise.
            if 6 in servers:
                await self._command(endpoint, 6, "On", {})
                if await self._read(f"{endpoint}/6/16387") is None:  # StartUpOnOff null or absent: keep it
                    expected[f"{endpoint}/6/0"] = True
            if 8 in servers:
                low, high = self.attributes.get(f"{endpoint}/8/2", 1), self.attributes.get(f"{endpoint}/8/3", 254)
                current = await self._read(f"{endpoint}/8/0")
                target = (low + high) // 3 if current != (low + high) // 3 else (low + high) // 2
                await self._command(endpoint, 8, "MoveToLevel", {"level": target, "transitionTime": 0,
                                                                 "optionsMask": 0, "optionsOverride": 0})
                if await self._read(f"{endpoint}/8/16384") is None:  # StartUpCurrentLevel null or absent
                    expected[f"{endpoint}/8/0"] = target
        if not expected:
            raise Skip("no OnOff or CurrentLevel to keep (or StartUp attributes set)")
        for path, value in expected.items():
            if await self._read(path) != value:
                raise Fail(f"{path} did not become {value!r} before the restart")
        seconds = await self._restart_and_wait()
        result.details.append(f"answered again {seconds:.1f} s after the restart began")
        forgotten = []
        for path, value in expected.items():
            after = await self._read(path)
            if after != value:
                forgotten.append(f"{path} was {value!r}, is {after!r}")
        if forgotten:
            raise Fail("forgot its state on restart: " + "; ".join(forgotten))
        result.details.append("kept " + ", ".join(f"{p}={v!r}" for p, v in expected.items()))

    async def check_restart_subscription(self, result: CheckResult) -> None:
        if self.restart is None:
            raise Skip("no way to restart the appliance was given (--restart-command)")
        endpoint = next((e for e in self._endpoints() if 6 in self._servers(e)), None)
        if endpoint is None:
            raise Skip("no On/Off cluster to be reported")
        state_check = self.report.get("restart.state")
        if state_check is None or state_check.status == "skip":  # not restarted yet
            seconds = await self._restart_and_wait()
            result.details.append(f"answered again {seconds:.1f} s after the restart began")
        # The server finds the restarted appliance's subscription gone only when it next hears (or misses) it:
        # a report may take up to the restart bound, not the usual one.
        await self._toggle_reported(endpoint, result, within=self.back_within)
