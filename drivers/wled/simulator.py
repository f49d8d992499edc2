"""A simulated WLED light speaking WLED's JSON API (kno.wled.ge/interfaces/json-api) and WebSocket
(kno.wled.ge/interfaces/websocket), advertised as ``_wled._tcp``.

Endpoints: ``GET /json`` (state, info, effects, palettes), ``/json/si``, ``/json/state``,
``/json/info``, ``/json/eff``, ``/json/pal``, ``/json/fxdata``, ``/json/cfg``, ``/presets.json``,
``POST /json/state`` (answers the new state when ``v`` is true) and ``/ws`` (pushes
``{"state", "info"}`` after every change). WLED clients talk to port 80, so each simulated
light needs its own address (a free one in 127/8 on loopback, see fleet.free_loopback_host, or a namespace host).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from qilu_hub.sdk.testing import HttpServer, MdnsAdvertiser

MDNS_TYPE = "_wled._tcp.local."
VERSION = "0.14.4"
EFFECTS = ["Solid", "Blink", "Breathe", "Wipe", "Wipe Random", "Random Colors", "Sweep", "Dynamic", "Colorloop",
           "Rainbow", "Scan", "Fade", "Theater", "Running", "Twinkle", "Fireworks"]
PALETTES = ["Default", "* Random Cycle", "* Color 1", "* Colors 1&2", "* Color Gradient", "* Colors Only", "Party",
            "Cloud", "Lava", "Ocean", "Forest", "Rainbow", "Rainbow Bands", "Sunset"]
LED_COUNT = 60
MA_PER_LED = 55  # mA at full white, a typical WS2812B figure


class WledSimulator:
    def __init__(self, host: str = "127.0.79.1", port: int = 80, *, serial: int = 1,
                 advertiser: MdnsAdvertiser | None = None, name: str | None = None) -> None:
        self.host = host
        self.server = HttpServer(self._make_app, host, port)
        self.advertiser = advertiser
        self.mac = f"c8c9a3{0x100000 + serial:06x}"
        self.name = name or (f"WLED {serial}" if serial > 1 else "WLED")
        self.booted = time.time()
        self.state: dict[str, Any] = {
            "on": False, "bri": 128, "transition": 7, "ps": -1, "pl": -1,
            "nl": {"on": False, "dur": 60, "mode": 1, "tbri": 0, "rem": -1},
            "udpn": {"send": False, "recv": True, "sgrp": 1, "rgrp": 1}, "lor": 0, "mainseg": 0,
            "seg": [{"id": 0, "start": 0, "stop": LED_COUNT, "len": LED_COUNT, "grp": 1, "spc": 0, "of": 0,
                     "on": True, "frz": False, "bri": 255, "cct": 127, "set": 0,
                     "col": [[255, 160, 0], [0, 0, 0], [0, 0, 0]], "fx": 0, "sx": 128, "ix": 128, "pal": 0,
                     "c1": 128, "c2": 128, "c3": 16, "sel": True, "rev": False, "mi": False, "o1": False,
                     "o2": False, "o3": False, "si": 0, "m12": 0}],
        }
        self._clients: set[web.WebSocketResponse] = set()
        self._service: Any = None

    @property
    def port(self) -> int:
        return self.server.port

    def info(self) -> dict[str, Any]:
        power = 0
        if self.state["on"]:
            seg = self.state["seg"][0]
            r, g, b = seg["col"][0]
            power = int(LED_COUNT * MA_PER_LED * (r + g + b) / (3 * 255) * self.state["bri"] / 255) + 40
        return {
            "ver": VERSION, "vid": 2405180, "leds": {"count": LED_COUNT, "pwr": power, "fps": 42, "maxpwr": 850,
                                                   "maxseg": 32, "seglc": [1], "lc": 1, "rgbw": False, "wv": 0,
                                                   "cct": 0},
            "str": False, "name": self.name, "udpport": 21324, "live": False, "liveseg": -1, "lm": "", "lip": "",
            "ws": len(self._clients), "fxcount": len(EFFECTS), "palcount": len(PALETTES), "cpalcount": 0,
            "maps": [{"id": 0}], "wifi": {"bssid": "00:00:00:00:00:00", "rssi": -58, "signal": 84, "channel": 6},
            "fs": {"u": 12, "t": 983, "pmt": 0}, "ndc": 0, "arch": "esp32", "core": "v3.3.6-16-gcc5440f6a2",
            "lwip": 0, "freeheap": 163000, "uptime": int(time.time() - self.booted), "time": time.strftime("%c"),
            "opt": 79, "brand": "WLED", "product": "FOSS", "mac": self.mac, "ip": self.host,
        }

    def full(self) -> dict[str, Any]:
        return {"state": self.state, "info": self.info(), "effects": EFFECTS, "palettes": PALETTES}

    def apply(self, change: dict[str, Any]) -> None:
        """Apply a JSON API state change (the subset clients send: on, bri, tt/transition, seg, ps, nl)."""
        if not isinstance(change, dict):
            raise ValueError("state must be an object")
        if "on" in change:
            on = change["on"]
            self.state["on"] = (not self.state["on"]) if on == "t" else bool(on)
        if isinstance(change.get("bri"), int):
            self.state["bri"] = max(0, min(255, change["bri"]))
            if change["bri"] == 0:
                self.state["on"] = False
        for key in ("transition", "tt"):
            if isinstance(change.get(key), int):
                self.state["transition"] = change[key]
        if isinstance(change.get("ps"), int):
            self.state["ps"] = change["ps"]
        segs = change.get("seg")
        if isinstance(segs, dict):
            segs = [segs]
        for seg_change in segs or []:
            if not isinstance(seg_change, dict):
                continue
            seg_id = seg_change.get("id", 0)
            if not isinstance(seg_id, int) or not 0 <= seg_id < len(self.state["seg"]):
                continue
            seg = self.state["seg"][seg_id]
            for key in ("on", "bri", "fx", "sx", "ix", "pal", "cct", "rev"):
                if key in seg_change:
                    seg[key] = seg_change[key]
            if isinstance(seg_change.get("col"), list):
                for i, color in enumerate(seg_change["col"][:3]):
                    if isinstance(color, list) and len(color) >= 3:
                        seg["col"][i] = [max(0, min(255, int(c))) for c in color[:3]]

    # -- HTTP / WebSocket -------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/json", self._get_full)
        app.router.add_get("/json/si", self._get_si)
        app.router.add_get("/json/state", self._serve(lambda: self.state))
        app.router.add_get("/json/info", self._serve(self.info))
        app.router.add_get("/json/eff", self._serve(lambda: EFFECTS))
        app.router.add_get("/json/effects", self._serve(lambda: EFFECTS))
        app.router.add_get("/json/pal", self._serve(lambda: PALETTES))
        app.router.add_get("/json/palettes", self._serve(lambda: PALETTES))
        app.router.add_get("/json/fxdata", self._serve(lambda: [""] * len(EFFECTS)))
        app.router.add_get("/json/cfg", self._get_cfg)
        app.router.add_get("/presets.json", self._serve(lambda: {"0": {}}))
        app.router.add_post("/json/state", self._post_state)
        app.router.add_post("/json", self._post_state)
        app.router.add_get("/ws", self._ws)
        return app

    @staticmethod
    def _serve(produce: Callable[[], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A handler answering with ``produce()`` as JSON (a coroutine function: aiohttp deprecates plain ones)."""
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(produce())
        return handler

    async def _get_full(self, request: web.Request) -> web.Response:
        return web.json_response(self.full())

    async def _get_si(self, request: web.Request) -> web.Response:
        return web.json_response({"state": self.state, "info": self.info()})

    async def _get_cfg(self, request: web.Request) -> web.Response:
        return web.json_response({"hw": {"led": {"total": LED_COUNT, "maxpwr": 850, "ledma": MA_PER_LED, "cct": False,
                                                 "cr": False, "cb": 0, "fps": 42, "rgbwm": 255,
                                                 "ins": [{"start": 0, "len": LED_COUNT, "pin": [16], "order": 0,
                                                          "rev": False, "skip": 0, "type": 22, "ref": False,
                                                          "rgbwm": 0, "freq": 0}]}},
                                  "id": {"name": self.name}})

    async def _post_state(self, request: web.Request) -> web.Response:
        try:
            change = await request.json(loads=json.loads)
            self.apply(change)
        except (ValueError, TypeError):
            return web.json_response({"error": 9}, status=400)
        self._broadcast()
        if isinstance(change, dict) and change.get("v"):
            return web.json_response(self.state)
        return web.json_response({"success": True})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._clients.add(ws)
        try:
            await ws.send_str(json.dumps({"state": self.state, "info": self.info()}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    change = json.loads(msg.data)
                    self.apply(change)
                except (ValueError, TypeError):
                    continue
                self._broadcast()
        finally:
            self._clients.discard(ws)
        return ws

    def _broadcast(self) -> None:
        message = json.dumps({"state": self.state, "info": self.info()})
        for ws in list(self._clients):
            asyncio.get_running_loop().create_task(self._send(ws, message))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, message: str) -> None:
        with contextlib.suppress(Exception):
            await ws.send_str(message)

    # -- lifecycle ------------------------------------------------------------------------
    def txt(self) -> dict[str, str]:
        # What WLED itself puts in its TXT record (wled00/wled.cpp adds "mac").
        return {"mac": self.mac}

    async def start(self) -> None:
        await self.server.start()
        if self.advertiser is not None and self._service is None:
            instance = f"wled-{self.mac[6:]}"
            self._service = await self.advertiser.register(MDNS_TYPE, instance, self.host, self.port, self.txt())

    async def stop(self) -> None:
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close()
        await self.server.stop()
        if self.advertiser is not None and self._service is not None:
            await self.advertiser.unregister(self._service)
            self._service = None
