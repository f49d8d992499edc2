"""The conformance kit over Matter: commission an appliance through matter-server and check what it declares.

For appliance makers building Matter products, before they pay for certification: ``qilu-hub firmware-test
--matter CODE`` commissions the appliance with its setup code (through a matter-server at ``url``, or one the
kit starts from ``venv`` with a throw-away fabric), then checks, per endpoint and declared device type:

* ``basic.information``: vendor and product names and ids, serial number, unique id and software version are
  there and of the right types (a hub merges the appliance with its other protocols by them);
* ``descriptor.mandatory_clusters``: every declared device type's mandatory server clusters are present;
* ``attributes.types``: the values a hub reads have their specified types;
* ``onoff.toggle``: a Toggle changes OnOff (read back) and the change is reported on the subscription;
* ``level.bounds``: a move to the highest level stays within MinLevel..MaxLevel;
* ``measurement.range``: measured values lie within their declared minimum and maximum;
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
# "cluster/attribute" -> the Python types its value may have (None: the attribute is nullable)
ATTRIBUTE_TYPES: dict[str, tuple[type, ...]] = {
    "6/0": (bool,), "8/0": (int, type(None)), "8/2": (int,), "8/3": (int,), "69/0": (bool,),
    "1026/0": (int, type(None)), "1029/0": (int, type(None)), "513/0": (int, type(None)), "1030/0": (int,),
}
MEASUREMENTS = (0x0402, 0x0405, 0x0400, 0x0403)  # MeasuredValue 0, MinMeasuredValue 1, MaxMeasuredValue 2
BASIC = {1: ("vendor name", str), 2: ("vendor id", int), 3: ("product name", str), 4: ("product id", int),
         9: ("software version", int), 15: ("serial number", str), 18: ("unique id", str)}


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class MatterConformanceKit:
    def __init__(self, code: str, *, url: str | None = None, venv: Path | None = None, port: int = 5580,
                 primary_interface: str | None = None, paa_root_cert_dir: Path | None = None, bound: float = 2.0,
                 progress: Progress | None = None, restart: Callable[[], Awaitable[Any]] | None = None,
                 back_within: float = 60.0) -> None:
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
        self.report = Report(target="Matter appliance", profile="matter")
        self.client: Any = None
        self.node_id: int | None = None
        self.attributes: dict[str, Any] = {}
        self.reports: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

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
        from matter_server.client import MatterClient
        from matter_server.common.models import EventType

        async with aiohttp.ClientSession() as session:
            self.client = client = MatterClient(url, session)
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
                ("measurement.range", "Measured values within their declared range", self.check_ranges),
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
        from matter_server.common.models import EventType

        node = await asyncio.wait_for(self.client.commission_with_code(self.code, network_only=True), 120)
        self.node_id = int(node.node_id)
        self.attributes = dict(self.client.get_node(self.node_id).node_data.attributes)

        def on_report(_event: Any, value: Any) -> None:
            self.reports.put_nowait(("?", value))

        self.client.subscribe_events(on_report, EventType.ATTRIBUTE_UPDATED, node_filter=self.node_id)
        result.message = f"node {self.node_id}, {len(self._endpoints())} endpoints"

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
        for path, value in self.attributes.items():
            endpoint, rest = path.split("/", 1)
            kinds = ATTRIBUTE_TYPES.get(rest)
            if kinds is None or endpoint == "0":
                continue
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                problems.append(f"{path} is {type(value).__name__} {value!r}")
        if problems:
            raise Fail("; ".join(problems))

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

        before = await self._read(f"{endpoint}/6/0")
        await asyncio.sleep(1.1)  # past matter-server's 1 s minimum report interval
        while not self.reports.empty():
            self.reports.get_nowait()
        await self.client.send_command(APICommand.DEVICE_COMMAND, node_id=self.node_id, endpoint_id=endpoint,
                                       cluster_id=6, command_name="Toggle", payload={})
        expected = not before

        def is_expected(value: Any, expected: bool = expected) -> bool:
            return value is expected

        started = time.monotonic()
        reported = await self._wait_report(is_expected, within or self.bound)
        waited = time.monotonic() - started
        after = await self._read(f"{endpoint}/6/0")
        if after == before:
            raise Fail(f"endpoint {endpoint}: Toggle was accepted but OnOff stayed {before}")
        if not reported:
            raise Fail(f"endpoint {endpoint}: OnOff changed to {after} but no report came within "
                       f"{within or self.bound:g} s")
        result.details.append(f"endpoint {endpoint}: {before} -> {after}, reported after {waited:.2f} s")

    async def _wait_report(self, wanted: Callable[[Any], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, value = await asyncio.wait_for(self.reports.get(), left)
            except TimeoutError:
                return False
            if wanted(value):
                return True
        return False

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
            if not isinstance(level, int) or not low <= level <= high:
                raise Fail(f"endpoint {endpoint}: CurrentLevel {level!r} outside {low}..{high}")
            result.details.append(f"endpoint {endpoint}: level {level} within {low}..{high}")

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
