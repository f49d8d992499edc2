"""The QOAP conformance kit, IP flavour: checks a device (or simulator) against the Qilu Open Appliance
Profile 1.x over mDNS, HTTP and WebSocket. The checks shared with the BLE flavour live in checks.py.

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
from typing import Any

import aiohttp
import msgpack

from qilu_hub import capabilities as caps
from qilu_hub.discovery.models import MdnsInfo
from qilu_hub.drivers.mdns_probe import browse
from qilu_hub.drivers.qoap import profile
from qilu_hub.drivers.qoap.identity import IdentityError, async_challenge

from .checks import PROFILES, CheckFn, Fail, KitBase, Progress, Skip, out_of_range, plans_for
from .results import CheckResult, Report

# Kept importable from here: the IP kit's callers and tests name them through this module.
__all__ = ["PROFILES", "ConformanceKit", "IpLink", "plans_for"]


def local_interface_for(host: str) -> str:
    """The local address that reaches ``host``: mDNS must be joined on that interface only."""
    if ipaddress.ip_address(host).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        return str(sock.getsockname()[0])


class IpLink:
    """The IP flavour behind the shared checks' :class:`~qilu_hub.firmware_tests.checks.Link`: HTTP reads and
    commands, state messages from a JSON WebSocket."""

    def __init__(self, session: aiohttp.ClientSession, base: str, bound: float) -> None:
        self.session = session
        self.base = base
        self.bound = bound
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def get(self, path: str) -> Any:
        async with self.session.get(self.base + path) as resp:
            if resp.status != 200:
                raise Fail(f"GET {path} answered HTTP {resp.status}")
            return await resp.json(content_type=None)

    async def read_description(self) -> Any:
        return await self.get(profile.DESCRIPTION_PATH)

    async def read_state(self) -> Any:
        return await self.get(profile.STATE_PATH)

    async def subscribe(self) -> None:
        self.ws = await self.session.ws_connect(f"{self.base}{profile.WS_PATH}?format=json", heartbeat=20)
        await self.ws.receive(timeout=self.bound)  # the snapshot

    async def unsubscribe(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def next_state(self, timeout: float) -> dict[str, Any] | None:
        assert self.ws is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                return None
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise ConnectionError("WebSocket closed")
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if isinstance(data, dict) and data.get("type") == "state":
                    return data
        return None

    async def command(self, key: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        body = {"entity": key, "command": command, "args": args}
        async with self.session.post(self.base + profile.COMMAND_PATH, json=body) as resp:
            if resp.status >= 300:
                return {"ok": False, "error": {"code": f"HTTP {resp.status}", "message": await resp.text()}}
            answer = await resp.json(content_type=None)
        return answer if isinstance(answer, dict) else {"ok": True}


class ConformanceKit(KitBase):
    """The IP flavour's run: mDNS, HTTP and WebSocket (docs/appliance-profile.md §1-6)."""

    def __init__(self, host: str, port: int | None = None, *, profile_name: str = "qoap", bound: float = 2.0,
                 mdns_timeout: float = 10.0, restart_timeout: float = 30.0, progress: Progress | None = None) -> None:
        super().__init__(f"{host}:{port or '?'}", profile_name, bound, progress)
        self.host = host
        self.port = port
        self.mdns_timeout = mdns_timeout
        self.restart_timeout = restart_timeout
        self.advert: MdnsInfo | None = None
        self.session: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def checks(self) -> list[tuple[str, str, CheckFn]]:
        return [
            ("mdns.advertised", "Advertised as _qoap._tcp at the host", self.check_advertised),
            ("mdns.txt_schema", "TXT record has id, model, mf, pv, caps", self.check_txt),
            ("description.valid", "Description is valid in the common model", self.check_description),
            ("state.readable", "Every declared entity and attribute is readable", self.check_state),
            ("ws.formats", "WebSocket pushes a snapshot in JSON and msgpack", self.check_ws_formats),
            ("commands.round_trip", "Every command changes state and notifies", self.check_commands),
            ("bad_input.rejected", "Bad inputs are rejected without a crash", self.check_bad_input),
            ("identity.proof", "Signs a challenge with a stable key, bound to its address", self.check_identity),
            ("restart.reconnect", "The device comes back after a restart", self.check_restart),
        ]

    async def run(self) -> Report:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            await self.run_checks()
        finally:
            await self.session.close()
        self.report.target = f"{self.host}:{self.port or '?'}"
        return self.report

    # -- checks -----------------------------------------------------------------------------
    async def check_advertised(self, result: CheckResult) -> None:
        def ours(info: MdnsInfo) -> bool:
            return self.host in info.addresses and (self.port is None or info.port == self.port)

        infos = await browse(profile.MDNS_TYPE, interface=local_interface_for(self.host), timeout=self.mdns_timeout,
                             expect=1000, until=ours)
        mine = [i for i in infos if ours(i)]
        if not mine:
            seen = ", ".join(f"{i.name}@{i.host}:{i.port}" for i in infos) or "none"
            raise Fail(f"no _qoap._tcp service advertises {self.host}{f':{self.port}' if self.port else ''}"
                        f" within {self.mdns_timeout:g} s (seen: {seen})")
        self.advert = mine[0]
        self.port = self.advert.port
        self.link = None
        result.message = f"{self.advert.name} at {self.host}:{self.port}"

    async def check_txt(self, result: CheckResult) -> None:
        self._need("mdns.advertised")
        assert self.advert is not None
        errors = profile.txt_errors(self.advert.properties)
        if errors:
            raise Fail("; ".join(errors))
        result.message = f"pv={self.advert.properties['pv']} caps={self.advert.properties['caps']}"

    def _link(self) -> IpLink:
        return self._ip()

    def _ip(self) -> IpLink:
        """The link for the current port (made afresh once mDNS has told the port)."""
        assert self.session is not None
        if self.port is None:
            raise Skip("no port: not advertised and none given")
        if self.link is None:
            self.link = IpLink(self.session, self.base, self.bound)
        assert isinstance(self.link, IpLink)
        return self.link

    def agree(self, description: dict[str, Any], result: CheckResult) -> None:
        if self.advert is None:
            return
        device, props = description["device"], self.advert.properties
        if props.get("id") != device["id"]:
            result.details.append(f"TXT id {props.get('id')!r} differs from description id {device['id']!r}")
        if props.get("model") != device["model"]:
            result.details.append(f"TXT model {props.get('model')!r} differs from {device['model']!r}")
        if props.get("caps") != profile.caps_summary(description):
            result.details.append(f"TXT caps {props.get('caps')!r} differs from the description's "
                                  f"{profile.caps_summary(description)!r}")

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
                    raise Fail(f"{fmt}: first frame is {msg.type.name}, expected a "
                                f"{'text' if fmt == 'json' else 'binary'} snapshot")
                if data.get("type") != "snapshot" or not isinstance(data.get("entities"), dict):
                    raise Fail(f"{fmt}: first message is not a snapshot")
            finally:
                await ws.close()
        result.message = "snapshot received in both formats"

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
        range_case = out_of_range(commanded)
        if range_case is not None:
            body = {"entity": commanded["key"], "command": range_case[0], "args": range_case[1]}
            cases.append(("argument out of range", json.dumps(body).encode(), "application/json"))
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
                raise Fail(f"device stopped answering after {label} (crashed?)")
        if result.details:
            raise Fail(result.details[0])
        result.message = f"{len(cases)} bad requests rejected; device still answers"

    async def check_identity(self, result: CheckResult) -> None:
        """§8 (profile 1.1): required of a 1.1 appliance; a 1.0 one is skipped, with what it costs."""
        self._need("description.valid")
        assert self.description is not None and self.session is not None and self.port is not None
        version = str(self.description["profile"]["version"])
        if not profile.has_identity(version) or PROFILES[self.profile_name] == "1.0":
            raise Skip(f"profile {version} has no identity proof (added in 1.1): the hub asks the household to "
                       "confirm every address change of this appliance")
        device_id = self.description["device"]["id"]
        try:
            first = await async_challenge(self.session, self.host, self.port, device_id)
            # A second, fresh challenge: the key must be the same (the hub pins it at adoption).
            await async_challenge(self.session, self.host, self.port, device_id, pinned=first.key)
        except IdentityError as err:
            raise Fail(str(err)) from None
        result.message = f"{profile.IDENTITY_ALG} key {first.key[:12]}..., signatures bound to {first.address}"

    async def check_restart(self, result: CheckResult) -> None:
        self._need("description.valid")
        if not await self._alive():
            raise Skip("device is not answering before the restart")
        assert self.session is not None
        ws = await self._ws("json")
        await ws.receive(timeout=self.bound)
        async with self.session.post(self.base + profile.RESTART_PATH) as resp:
            if resp.status not in (200, 202):
                raise Fail(f"POST {profile.RESTART_PATH} answered HTTP {resp.status}")
        started = time.monotonic()
        try:
            msg = await ws.receive(timeout=self.restart_timeout)
            while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                msg = await ws.receive(timeout=self.restart_timeout)
        except TimeoutError:
            raise Fail("the WebSocket stayed open: the device did not restart") from None
        finally:
            await ws.close()
        # The device may still answer for a moment after closing its sockets, before it goes down: so "back"
        # means a new WebSocket that delivers a snapshot, retried until the restart timeout.
        while True:
            if time.monotonic() - started > self.restart_timeout:
                raise Fail(f"device did not answer within {self.restart_timeout:g} s of the restart")
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
                raise Fail("after the restart the WebSocket does not send a snapshot")
            break
        back = time.monotonic() - started

        def ours(info: MdnsInfo) -> bool:
            return self.host in info.addresses and info.port == self.port

        infos = await browse(profile.MDNS_TYPE, interface=local_interface_for(self.host), timeout=self.mdns_timeout,
                             expect=1000, until=ours)
        if not any(ours(i) for i in infos):
            raise Fail("after the restart the device is no longer advertised")
        result.message = f"back after {back:.1f} s, snapshot and advertisement OK"
