"""Testing aid, not used by the client: a tiny stand-in hub that speaks the msgpack stream with simulated lights.

For writing and trying scenes without a hub, for the XR benchmark, and for stream-client tests:
    python -m qilu_hub.xr_bridge.testing --port 8123 --token dev --lights light.living_room,light.kitchen
It is not the hub: no drivers, no persistence, no capability catalogue beyond on/off/toggle/brightness."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

LIGHT_COMMANDS = frozenset({"turn_on", "turn_off", "toggle"})


class DevHub:
    def __init__(
        self, token: str = "dev", lights: list[str] | None = None, sensors: dict[str, Any] | None = None
    ) -> None:
        self.token = token
        now = time.time()
        self.states: dict[str, dict[str, Any]] = {}
        for eid in lights or []:
            self.states[eid] = {"v": "off", "a": {"brightness": 0}, "lc": now, "lu": now}
        for eid, v in (sensors or {}).items():
            self.states[eid] = {"v": v, "a": {"unit_of_measurement": "°C"}, "lc": now, "lu": now}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.on_change: list[Callable[[str], None]] = []
        self._subs: list[tuple[web.WebSocketResponse, set[str] | None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application()  # fresh per start: an aiohttp app is bound to one event loop
        app.router.add_get("/api/stream", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # the bound port (port=0 asks the OS for a free one); aiohttp keeps it in the runner's addresses
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        for ws, _ in list(self._subs):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def set_state(self, entity_id: str, value: Any, **attrs: Any) -> None:
        st = self.states[entity_id]
        now = time.time()
        if st["v"] != value:
            st["lc"] = now
        st["v"] = value
        st["a"] = {**st["a"], **attrs}
        st["lu"] = now
        for cb in self.on_change:
            cb(entity_id)
        for ws, ents in list(self._subs):
            if ents is None or entity_id in ents:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(
                        msgpack.packb({"type": "delta", "id": 1, "states": {entity_id: st}, "removed": []})
                    )

    async def _execute(self, entity_id: str, command: str, args: dict[str, Any]) -> dict[str, Any] | None:
        st = self.states.get(entity_id)
        if st is None:
            return {"code": "not_found", "message": f"unknown entity {entity_id}"}
        if not entity_id.startswith("light.") or command not in LIGHT_COMMANDS:
            return {"code": "not_supported", "message": f"{entity_id} does not accept {command}"}
        self.calls.append((entity_id, command, args))
        on = {"turn_on": True, "turn_off": False, "toggle": st["v"] != "on"}[command]
        attrs = {"brightness": int(args.get("brightness", st["a"].get("brightness") or 255)) if on else 0}
        await self.set_state(entity_id, "on" if on else "off", **attrs)
        return None

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)

        async def send(m: dict[str, Any]) -> None:
            await ws.send_bytes(msgpack.packb(m))

        authed = False
        entry: tuple[web.WebSocketResponse, set[str] | None] | None = None
        try:
            async for raw in ws:
                if raw.type != WSMsgType.BINARY:
                    continue
                m = msgpack.unpackb(raw.data)
                t = m.get("type")
                if not authed:
                    if t == "auth" and m.get("access_token") == self.token:
                        authed = True
                        await send({"type": "auth_ok"})
                        continue
                    await send({"type": "auth_invalid", "message": "invalid access token"})
                    await ws.close()
                    break
                if t == "subscribe":
                    ents = set(m["entities"]) if m.get("entities") is not None else None
                    snap = {k: v for k, v in self.states.items() if ents is None or k in ents}
                    await send({"type": "snapshot", "id": m.get("id"), "states": snap})
                    entry = (ws, ents)
                    self._subs.append(entry)
                elif t == "call":
                    err = await self._execute(str(m.get("entity_id")), str(m.get("command")), m.get("args") or {})
                    await send(
                        {
                            "type": "result",
                            "id": m.get("id"),
                            "success": err is None,
                            **({"error": err} if err else {}),
                        }
                    )
                elif t == "ping":
                    await send({"type": "pong", "id": m.get("id")})
        finally:
            if entry is not None and entry in self._subs:
                self._subs.remove(entry)
        return ws


class DevHubThread:
    """Runs a DevHub on its own loop thread (for tests/benchmarks whose main thread
    runs something blocking)."""

    def __init__(self, hub: DevHub, port: int = 0) -> None:
        self.hub = hub
        self.loop = asyncio.new_event_loop()
        self._port = port
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="devhub", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.hub.start(port=self._port))
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.hub.stop())
        self.loop.close()

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(10)
        return self.hub.port

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--token", default="dev")
    ap.add_argument("--lights", default="light.living_room,light.kitchen")
    ap.add_argument("--sensors", default="sensor.living_room_temperature=21.5")
    a = ap.parse_args()
    sensors = dict(s.split("=", 1) for s in a.sensors.split(",") if s)
    hub = DevHub(a.token, [x for x in a.lights.split(",") if x], sensors)

    async def go() -> None:
        port = await hub.start(port=a.port)
        print(f"devhub on ws://127.0.0.1:{port}/api/stream token={a.token}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(go())


if __name__ == "__main__":
    main()
