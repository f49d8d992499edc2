"""Simulated QOAP appliances (air conditioner, fridge, washing machine) speaking the profile over real HTTP,
WebSocket and mDNS, plus deliberately broken variants that the conformance kit must fail.

Variants: ``ok``; ``bad_txt`` (TXT lacks ``pv`` and names another id); ``silent`` (never pushes
state changes on the WebSocket); ``crashy`` (a malformed command takes the whole server down);
``profile_1_0`` (an older firmware: profile 1.0, no identity endpoint); ``unbound_identity`` (signs
the identity challenge without its address, so a relayed proof would pass: the kit must fail it).

Each simulator holds an Ed25519 identity key (§8): random per instance, or derived from ``seed``
and its id, so a test can start "the same appliance" again elsewhere (a DHCP move).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import msgpack
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from qilu_hub.sdk import CommandError, merged_commands, validate_command
from qilu_hub.sdk.testing import HttpServer, MdnsAdvertiser

from . import profile
from .variants import VARIANTS as VARIANTS  # named here too, as before (tests, the kit)
from .variants import Variant

_LOGGER = logging.getLogger(__name__)

KINDS = ("air_conditioner", "fridge", "washing_machine")

# Simulated seconds per real second for the washing machine's cycle, so a demo shows progress.
TIME_SCALE = 60.0
PROGRAMS = {"cotton": 5400, "quick": 900, "eco": 7200}


@dataclass(slots=True)
class SimEntity:
    key: str
    name: str
    capabilities: list[str]
    state: Any
    attributes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "capabilities": list(self.capabilities)}

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "attributes": dict(self.attributes)}


class Appliance:
    """The appliance's own logic: what a command does, how it behaves over time."""

    kind: str = ""
    model: str = ""
    title: str = ""

    def __init__(self) -> None:
        self.entities: dict[str, SimEntity] = {}
        self.changed: list[str] = []  # keys changed since the last drain

    def add(self, entity: SimEntity) -> None:
        self.entities[entity.key] = entity

    def set(self, key: str, state: Any = None, **attributes: Any) -> None:
        entity = self.entities[key]
        before = (entity.state, dict(entity.attributes))
        if state is not None:
            entity.state = state
        entity.attributes.update(attributes)
        if (entity.state, entity.attributes) != before:
            self.changed.append(key)

    def command(self, key: str, command: str, args: dict[str, Any]) -> None:
        raise NotImplementedError

    def tick(self, seconds: float) -> None:
        """Advance the appliance's physics by ``seconds`` of simulated time."""


class AirConditioner(Appliance):
    kind = "air_conditioner"
    model = "QAC-3500"
    title = "Air Conditioner"

    def __init__(self) -> None:
        super().__init__()
        self.add(SimEntity("climate", "Air Conditioner", ["thermostat"], "off",
                           {"temperature": 24.0, "current_temperature": 28.0}))
        self.add(SimEntity("fan", "Air Conditioner Fan", ["fan"], "off", {"percentage": 0}))
        self.add(SimEntity("power", "Air Conditioner Power", ["power"], 2.0))

    def command(self, key: str, command: str, args: dict[str, Any]) -> None:
        if key == "climate":
            if command == "set_temperature":
                self.set(key, temperature=args["temperature"])
            elif command == "set_hvac_mode":
                self.set(key, args["hvac_mode"])
            elif command == "turn_on":
                self.set(key, "cool")
            elif command == "turn_off":
                self.set(key, "off")
        elif key == "fan":
            if command in ("turn_on", "set_percentage"):
                percentage = args.get("percentage", self.entities[key].attributes["percentage"] or 50)
                self.set(key, "on", percentage=percentage)
            elif command == "turn_off":
                self.set(key, "off", percentage=0)
            elif command == "toggle":
                self.command(key, "turn_off" if self.entities[key].state == "on" else "turn_on", {})
        self._update_power()

    def _update_power(self) -> None:
        climate = self.entities["climate"]
        fan = self.entities["fan"]
        watts = 2.0
        if climate.state not in ("off", "fan_only"):
            gap = abs(climate.attributes["current_temperature"] - climate.attributes["temperature"])
            watts += 400.0 + min(gap, 10.0) * 90.0
        if fan.state == "on" or climate.state != "off":
            watts += 15.0 + 0.4 * (fan.attributes["percentage"] or 40)
        self.set("power", round(watts, 1))

    def tick(self, seconds: float) -> None:
        climate = self.entities["climate"]
        now = climate.attributes["current_temperature"]
        if climate.state in ("cool", "heat", "heat_cool", "auto", "dry"):
            target = climate.attributes["temperature"]
        else:
            target = 29.0  # a warm summer room
        step = (target - now) * min(1.0, seconds / 600.0)
        if abs(step) >= 0.05:
            self.set("climate", current_temperature=round(now + step, 1))
            self._update_power()


class Fridge(Appliance):
    kind = "fridge"
    model = "QRF-520"
    title = "Fridge"

    def __init__(self) -> None:
        super().__init__()
        self.add(SimEntity("fridge_temperature", "Fridge Temperature", ["temperature"], 4.0))
        self.add(SimEntity("freezer_temperature", "Freezer Temperature", ["temperature"], -18.0))
        self.add(SimEntity("door", "Fridge Door", ["door"], "off"))
        self.add(SimEntity("super_cool", "Fridge Super Cool", ["on_off"], "off"))
        self.add(SimEntity("power", "Fridge Power", ["power"], 85.0))
        self._door_timer = 0.0

    def command(self, key: str, command: str, args: dict[str, Any]) -> None:
        if key == "super_cool":
            on = command == "turn_on" or (command == "toggle" and self.entities[key].state == "off")
            self.set(key, "on" if on else "off")
            self.set("power", 160.0 if on else 85.0)

    def tick(self, seconds: float) -> None:
        target = 2.0 if self.entities["super_cool"].state == "on" else 4.0
        now = self.entities["fridge_temperature"].state
        if self.entities["door"].state == "on":
            target = 9.0
            self._door_timer -= seconds
            if self._door_timer <= 0:
                self.set("door", "off")
        elif random.random() < seconds / 3600.0:  # someone opens the door about once an hour
            self.set("door", "on")
            self._door_timer = 30.0
        step = (target - now) * min(1.0, seconds / 900.0)
        if abs(step) >= 0.05:
            self.set("fridge_temperature", round(now + step, 1))


class WashingMachine(Appliance):
    kind = "washing_machine"
    model = "QWM-90"
    title = "Washing Machine"

    def __init__(self) -> None:
        super().__init__()
        self.add(SimEntity("cycle", "Washing Machine", ["operational_state"], "stopped",
                           {"program": "cotton", "remaining_s": 0}))
        self.add(SimEntity("power", "Washing Machine Power", ["power"], 0.5))
        self.add(SimEntity("door", "Washing Machine Door", ["door"], "off"))

    def command(self, key: str, command: str, args: dict[str, Any]) -> None:
        if key != "cycle":
            return
        cycle = self.entities["cycle"]
        if command == "start":
            program = args.get("program", cycle.attributes["program"])
            if program not in PROGRAMS:
                raise CommandError("invalid_format", f"unknown program {program!r} (known: {', '.join(PROGRAMS)})")
            self.set(key, "running", program=program, remaining_s=PROGRAMS[program])
        elif command == "pause" and cycle.state == "running":
            self.set(key, "paused")
        elif command == "resume" and cycle.state == "paused":
            self.set(key, "running")
        elif command == "stop":
            self.set(key, "stopped", remaining_s=0)
        self._update_power()

    def _update_power(self) -> None:
        cycle = self.entities["cycle"]
        if cycle.state != "running":
            self.set("power", 0.5)
            return
        total = PROGRAMS[cycle.attributes["program"]]
        done = 1.0 - cycle.attributes["remaining_s"] / total
        # Heat the water first, then wash, then spin: the power profile of a real machine.
        self.set("power", 2000.0 if done < 0.2 else 180.0 if done < 0.85 else 450.0)

    def tick(self, seconds: float) -> None:
        cycle = self.entities["cycle"]
        if cycle.state == "running":
            remaining = max(0, int(cycle.attributes["remaining_s"] - seconds))
            if remaining == 0:
                self.set("cycle", "finished", remaining_s=0)
            else:
                self.set("cycle", remaining_s=remaining)
            self._update_power()


APPLIANCES: dict[str, type[Appliance]] = {c.kind: c for c in (AirConditioner, Fridge, WashingMachine)}


_BINARY = web.ResponseKey("binary", bool)  # whether this client asked for msgpack frames


class QoapSimulator:
    """One appliance on (host, port), advertised as ``_qoap._tcp`` through the given advertiser."""

    def __init__(self, kind: str, host: str = "127.0.0.1", port: int = 0, *, serial: int = 1,
                 advertiser: MdnsAdvertiser | None = None, variant: Variant = "ok", tick: float = 1.0,
                 restart_delay: float = 1.0, time_scale: float = TIME_SCALE, name: str | None = None,
                 device_id: str | None = None, instance: str | None = None, seed: str | None = None) -> None:
        self.appliance = APPLIANCES[kind]()
        self.time_scale = time_scale  # simulated seconds per real second (a soak raises it for more changes)
        self.variant = variant
        self.device_id = device_id or f"qoap-{kind.replace('_', '')}-{serial:04d}"
        self.name = name or (f"{self.appliance.title} {serial}" if serial > 1 else self.appliance.title)
        self.instance = instance or self.device_id  # the DNS-SD instance name (§1: SHOULD be the id)
        if seed is None:
            self.identity = Ed25519PrivateKey.generate()
        else:
            secret = hashlib.sha256(b"qoap-simulator-identity\n" + seed.encode() + b"\n" + self.device_id.encode())
            self.identity = Ed25519PrivateKey.from_private_bytes(secret.digest())
        self.profile_version = "1.0" if variant == "profile_1_0" else profile.PROFILE_VERSION
        self.requests = 0  # HTTP requests and WebSocket sessions served (tests check who was talked to)
        self.commands = 0  # commands executed
        self.host = host
        self.server = HttpServer(self._make_app, host, port)
        self.advertiser = advertiser
        self.tick_interval = tick
        self.restart_delay = restart_delay
        self._clients: set[web.WebSocketResponse] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._restarting: asyncio.Task[None] | None = None
        self._service: Any = None
        self.crashed = False
        self.restarts = 0

    @property
    def port(self) -> int:
        return self.server.port

    @staticmethod
    def title_of(kind: str) -> str:
        return APPLIANCES[kind].title

    # -- the protocol ---------------------------------------------------------------------
    def description(self) -> dict[str, Any]:
        return {
            "profile": {"name": profile.PROFILE_NAME, "version": self.profile_version},
            "device": {"id": self.device_id, "name": self.name, "manufacturer": "Qilu Appliances",
                       "model": self.appliance.model, "sw_version": "1.4.2"},
            "entities": [e.describe() for e in self.appliance.entities.values()],
        }

    def txt(self) -> dict[str, str]:
        props = {"id": self.device_id, "model": self.appliance.model, "mf": "Qilu Appliances",
                 "pv": self.profile_version, "caps": profile.caps_summary(self.description()), "name": self.name}
        if self.variant == "bad_txt":
            del props["pv"]
            props["id"] = "someone-else"
        return props

    def state(self) -> dict[str, Any]:
        return {"entities": {k: e.snapshot() for k, e in self.appliance.entities.items()}}

    def public_key(self) -> str:
        """The identity public key as the hub pins it (base64 of the 32 raw bytes)."""
        raw = self.identity.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return profile.b64encode(raw)

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        response: web.StreamResponse = await handler(request)
        return response

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024, middlewares=[self._count])
        if self.variant != "profile_1_0":
            app.router.add_post(profile.IDENTITY_PATH, self._post_identity)
        app.router.add_get(profile.DESCRIPTION_PATH, self._get_description)
        app.router.add_get(profile.STATE_PATH, self._get_state)
        app.router.add_post(profile.COMMAND_PATH, self._post_command)
        app.router.add_post(profile.RESTART_PATH, self._post_restart)
        app.router.add_get(profile.WS_PATH, self._ws)
        return app

    async def _post_identity(self, request: web.Request) -> web.Response:
        """§8: sign the hub's challenge with this appliance's key, bound to the address it was reached on."""
        try:
            body = await request.json()
            challenge = profile.b64decode(body.get("challenge") if isinstance(body, dict) else None)
        except ValueError as err:
            return self._bad_input(request, "invalid_format", f"expected {{\"challenge\": base64}}: {err}")
        if not profile.MIN_CHALLENGE_BYTES <= len(challenge) <= profile.MAX_CHALLENGE_BYTES:
            return self._bad_input(request, "out_of_range", f"a challenge has {profile.MIN_CHALLENGE_BYTES}-"
                                                            f"{profile.MAX_CHALLENGE_BYTES} bytes")
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        address = profile.format_address(str(sockname[0]), int(sockname[1])) if sockname else ""
        if self.variant == "unbound_identity":
            address = ""  # the firmware bug the kit must catch: a relayed proof would verify anywhere
        signature = self.identity.sign(profile.identity_message(self.device_id, address, challenge))
        return _reply(request, {"alg": profile.IDENTITY_ALG, "key": self.public_key(),
                                "signature": profile.b64encode(signature)})

    async def _get_description(self, request: web.Request) -> web.Response:
        return _reply(request, self.description())

    async def _get_state(self, request: web.Request) -> web.Response:
        return _reply(request, self.state())

    async def _post_command(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
            if request.content_type == profile.MSGPACK_CONTENT_TYPE:
                payload = msgpack.unpackb(body)
            else:
                payload = json.loads(body)
            result = self.execute(payload)
        except (ValueError, msgpack.UnpackException) as err:
            return self._bad_input(request, "invalid_format", f"body is not valid JSON/msgpack: {err}")
        except CommandError as err:
            return self._bad_input(request, err.code, err.message)
        return _reply(request, {"ok": True, "state": result})

    def _bad_input(self, request: web.Request, code: str, message: str) -> web.Response:
        if self.variant == "crashy":
            # The firmware bug the kit must catch: a malformed request kills the web server.
            self.crashed = True
            if request.transport is not None:
                request.transport.abort()  # the connection drops mid-request, as when the firmware resets
            asyncio.get_running_loop().create_task(self._crash())
            raise web.HTTPInternalServerError(text="firmware panic")
        status = 404 if code == "not_found" else 400
        return _reply(request, {"ok": False, "error": {"code": code, "message": message}}, status)

    async def _crash(self) -> None:
        await self._close_clients()
        await self.server.stop()

    def execute(self, payload: Any) -> dict[str, Any]:
        """Validate and run a command; returns the entity's new snapshot. Raises CommandError on bad input."""
        if not isinstance(payload, dict):
            raise CommandError("invalid_format", "command must be an object")
        key, command, args = payload.get("entity"), payload.get("command"), payload.get("args", {})
        entity = self.appliance.entities.get(key) if isinstance(key, str) else None
        if entity is None:
            raise CommandError("not_found", f"no entity {key!r}")
        if not isinstance(command, str):
            raise CommandError("invalid_format", "command must be a string")
        clean = validate_command(merged_commands(entity.capabilities), command, args)
        self.commands += 1
        self.appliance.command(entity.key, command, clean)
        self._flush()
        return entity.snapshot()

    async def _post_restart(self, request: web.Request) -> web.Response:
        if self._restarting is None or self._restarting.done():
            self._restarting = asyncio.get_running_loop().create_task(self.restart())
        return _reply(request, {"ok": True, "restarting_in_s": 0.1}, 202)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        binary = request.query.get("format") == "msgpack"
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        ws[_BINARY] = binary
        self._clients.add(ws)
        try:
            await self._send(ws, {"type": "snapshot", **self.state()})
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    payload = msgpack.unpackb(msg.data) if msg.type == WSMsgType.BINARY else json.loads(msg.data)
                    if not isinstance(payload, dict) or payload.get("type") != "command":
                        raise CommandError("invalid_format", 'expected {"type": "command", ...}')
                    snap = self.execute(payload)
                    await self._send(ws, {"type": "result", "id": payload.get("id"), "ok": True, "state": snap})
                except (ValueError, msgpack.UnpackException, CommandError) as err:
                    code = err.code if isinstance(err, CommandError) else "invalid_format"
                    await self._send(ws, {"type": "result", "ok": False,
                                          "error": {"code": code, "message": str(err)}})
        finally:
            self._clients.discard(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        if ws[_BINARY]:
            await ws.send_bytes(msgpack.packb(message))
        else:
            await ws.send_str(json.dumps(message))

    def _flush(self) -> None:
        """Push every changed entity to WebSocket clients (the ``silent`` variant forgets to)."""
        changed, self.appliance.changed = self.appliance.changed, []
        if self.variant == "silent" or not self._clients:
            return
        for key in dict.fromkeys(changed):
            entity = self.appliance.entities[key]
            message = {"type": "state", "entity": key, **entity.snapshot()}
            for ws in list(self._clients):
                asyncio.get_running_loop().create_task(self._safe_send(ws, message))

    async def _safe_send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self._send(ws, message)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.server.start()
        if self.advertiser is not None and self._service is None:
            self._service = await self.advertiser.register(profile.MDNS_TYPE, self.instance, self.host,
                                                           self.port, self.txt())
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            if self.server.running:
                self.appliance.tick(self.tick_interval * self.time_scale)
                self._flush()

    async def _close_clients(self) -> None:
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close()
        self._clients.clear()

    async def restart(self) -> None:
        """Reboot: the web server goes away for ``restart_delay`` seconds and comes back on the same port."""
        await asyncio.sleep(0.1)
        await self._close_clients()
        await self.server.stop()
        await asyncio.sleep(self.restart_delay)
        await self.server.start()
        self.restarts += 1

    async def stop(self) -> None:
        for task in (self._ticker, self._restarting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._ticker = None
        await self._close_clients()
        await self.server.stop()
        if self.advertiser is not None and self._service is not None:
            await self.advertiser.unregister(self._service)
            self._service = None


def _reply(request: web.Request, data: Any, status: int = 200) -> web.Response:
    """JSON by default; msgpack when the client asks for it with Accept."""
    if profile.MSGPACK_CONTENT_TYPE in request.headers.get("Accept", ""):
        return web.Response(body=msgpack.packb(data), status=status, content_type=profile.MSGPACK_CONTENT_TYPE)
    return web.json_response(data, status=status)
