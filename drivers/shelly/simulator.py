"""A simulated Shelly Gen2 device: ``GET /shelly``, RPC over HTTP (``/rpc/<Method>``) and over the
``/rpc`` WebSocket with ``NotifyStatus`` pushes, advertised as ``_shelly._tcp``.

Frames follow Shelly's Gen2 RPC documentation (shelly-api-docs.shelly.cloud, "RPC Protocol"
and "Notifications"): requests ``{id, src, method, params}``, responses ``{id, src, dst,
result | error}``. Models: ``plus1pm`` (one metered relay driving a lamp) and ``plus2pm``
in cover mode (a roller shutter that takes ``travel_s`` to run end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any, Literal

from aiohttp import WSMsgType, web

from qilu_hub.sdk.testing import HttpServer, MdnsAdvertiser

Model = Literal["plus1pm", "plus2pm"]
MODELS: dict[str, dict[str, str]] = {
    "plus1pm": {"model": "SNSW-001P16EU", "app": "Plus1PM", "prefix": "shellyplus1pm"},
    "plus2pm": {"model": "SNSW-102P16EU", "app": "Plus2PM", "prefix": "shellyplus2pm"},
}
FW_ID = "20231107-162425/1.0.8-g8c7bb8d"  # before 20240213: no dynamic components to page through
VERSION = "1.0.8"
MDNS_TYPE = "_shelly._tcp.local."

# RPC error codes from Shelly's documentation.
ERR_INVALID_ARGUMENT = -103
ERR_NOT_FOUND = -105
ERR_METHOD = 404


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class ShellySimulator:
    def __init__(self, model: Model = "plus1pm", host: str = "127.0.0.1", port: int = 0, *, serial: int = 1,
                 advertiser: MdnsAdvertiser | None = None, load_watts: float = 60.0, travel_s: float = 4.0) -> None:
        meta = MODELS[model]
        self.model = model
        self.mac = f"A8032A{(0xB10000 if model == 'plus1pm' else 0xC20000) + serial:06X}"
        self.device_id = f"{meta['prefix']}-{self.mac.lower()}"
        self.host = host
        self.server = HttpServer(self._make_app, host, port)
        self.advertiser = advertiser
        self.load_watts = load_watts
        self.travel_s = travel_s
        self.booted = time.time()
        self.energy_wh = 1234.5
        self.status: dict[str, Any] = {"sys": self._sys()}
        if model == "plus1pm":
            self.status["switch:0"] = {"id": 0, "source": "init", "output": False, "apower": 0.0, "voltage": 229.8,
                                       "current": 0.0,
                                       "aenergy": {"total": self.energy_wh, "by_minute": [0.0, 0.0, 0.0],
                                                   "minute_ts": int(time.time())},
                                       "temperature": {"tC": 41.2, "tF": 106.2}}
        else:
            self.status["cover:0"] = {"id": 0, "source": "init", "state": "stopped", "apower": 0.0, "voltage": 230.4,
                                      "current": 0.0, "pf": 0.0,
                                      "aenergy": {"total": 55.1, "by_minute": [0.0, 0.0, 0.0],
                                                  "minute_ts": int(time.time())},
                                      "current_pos": 50, "pos_control": True, "last_direction": "open",
                                      "temperature": {"tC": 39.0, "tF": 102.2}}
        self._target_pos: int | None = None
        self._clients: dict[web.WebSocketResponse, str] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._service: Any = None
        self.calls: list[str] = []  # methods called, for tests

    @property
    def port(self) -> int:
        return self.server.port

    def _sys(self) -> dict[str, Any]:
        now = time.time()
        return {"mac": self.mac, "restart_required": False, "time": time.strftime("%H:%M"), "unixtime": int(now),
                "uptime": int(now - self.booted), "ram_size": 246000, "ram_free": 140000, "fs_size": 458752,
                "fs_free": 135168, "cfg_rev": 10, "kvs_rev": 0, "schedule_rev": 0, "webhook_rev": 0,
                "available_updates": {}}

    def device_info(self) -> dict[str, Any]:
        meta = MODELS[self.model]
        return {"name": None, "id": self.device_id, "mac": self.mac, "slot": 1, "model": meta["model"], "gen": 2,
                "fw_id": FW_ID, "ver": VERSION, "app": meta["app"], "auth_en": False, "auth_domain": None,
                "profile": "cover" if self.model == "plus2pm" else "switch"}

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "sys": {"device": {"name": None, "mac": self.mac, "fw_id": FW_ID, "eco_mode": False,
                               "profile": self.device_info()["profile"], "discoverable": True},
                    "location": {"tz": "Asia/Shanghai", "lat": 36.07, "lon": 120.38},
                    "ui_data": {}, "cfg_rev": 10},
            "wifi": {"sta": {"ssid": "home", "enable": True}},
            "ws": {"enable": False, "server": None, "ssl_ca": "ca.pem"},
            "ble": {"enable": True, "rpc": {"enable": True}, "observer": {"enable": False}},
            "cloud": {"enable": False, "server": "shelly-103-eu.shelly.cloud:6022/jrpc"},
            "mqtt": {"enable": False},
        }
        if "switch:0" in self.status:
            cfg["switch:0"] = {"id": 0, "name": None, "in_mode": "follow", "initial_state": "match_input",
                               "auto_on": False, "auto_off": False, "power_limit": 4480, "voltage_limit": 280,
                               "current_limit": 16.0}
        if "cover:0" in self.status:
            cfg["cover:0"] = {"id": 0, "name": None, "motor": {"idle_power_thr": 2.0}, "maxtime_open": 60,
                              "maxtime_close": 60, "initial_state": "stopped", "invert_directions": False,
                              "in_mode": "dual", "swap_inputs": False, "safety_switch": None,
                              "power_limit": 2800, "voltage_limit": 280, "current_limit": 10.0,
                              "obstruction_detection": {"enable": False}}
        return cfg

    # -- RPC ------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append(method)
        if method == "Shelly.GetDeviceInfo":
            return self.device_info()
        if method == "Shelly.GetConfig":
            return self.config()
        if method == "Shelly.GetStatus":
            self.status["sys"] = self._sys()
            return self.status
        if method == "Shelly.GetComponents":
            return {"components": [], "cfg_rev": 10, "offset": 0, "total": 0}
        if method == "Shelly.ListMethods":
            return {"methods": ["Shelly.GetDeviceInfo", "Shelly.GetConfig", "Shelly.GetStatus", "Switch.Set",
                                "Switch.Toggle", "Switch.GetStatus", "Cover.Open", "Cover.Close", "Cover.Stop",
                                "Cover.GoToPosition", "Cover.GetStatus", "Shelly.Reboot"]}
        if method == "Shelly.Reboot":
            return None
        component, _, action = method.partition(".")
        key = f"{component.lower()}:{self._id(params)}"
        if key not in self.status:
            raise RpcError(ERR_NOT_FOUND, f"{component} {self._id(params)} not found")
        if component == "Switch":
            if action == "GetStatus":
                return self.status[key]
            if action in ("Set", "Toggle"):
                was = self.status[key]["output"]
                if action == "Set":
                    on = params.get("on")
                    if not isinstance(on, bool):
                        raise RpcError(ERR_INVALID_ARGUMENT, "Argument 'on', value type mismatch")
                else:
                    on = not was
                self._set_output(key, on)
                return {"was_on": was}
        if component == "Cover":
            if action == "GetStatus":
                return self.status[key]
            if action == "Open":
                self._move(key, 100)
            elif action == "Close":
                self._move(key, 0)
            elif action == "Stop":
                self._stop_cover(key)
            elif action == "GoToPosition":
                pos = params.get("pos")
                if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos <= 100:
                    raise RpcError(ERR_INVALID_ARGUMENT, "Argument 'pos' must be 0..100")
                self._move(key, pos)
            else:
                raise RpcError(ERR_METHOD, f"No handler for {method}")
            return None
        raise RpcError(ERR_METHOD, f"No handler for {method}")

    @staticmethod
    def _id(params: dict[str, Any]) -> int:
        value = params.get("id", 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RpcError(ERR_INVALID_ARGUMENT, "Argument 'id', value type mismatch")
        return value

    def _set_output(self, key: str, on: bool) -> None:
        sw = self.status[key]
        sw["output"] = on
        sw["source"] = "WS_in"
        # A real lamp's draw settles around its rating, with mains noise.
        sw["apower"] = round(self.load_watts * random.uniform(0.97, 1.03), 1) if on else 0.0
        sw["current"] = round(sw["apower"] / sw["voltage"], 3)
        self._notify({key: {"id": 0, "output": on, "source": "WS_in", "apower": sw["apower"],
                            "current": sw["current"]}})

    def _move(self, key: str, target: int) -> None:
        cover = self.status[key]
        if target == cover["current_pos"]:
            return
        self._target_pos = target
        cover["state"] = "opening" if target > cover["current_pos"] else "closing"
        cover["last_direction"] = "open" if target > cover["current_pos"] else "close"
        cover["apower"] = 118.0
        self._notify({key: {"id": 0, "state": cover["state"], "apower": 118.0, "target_pos": target}})

    def _stop_cover(self, key: str) -> None:
        cover = self.status[key]
        self._target_pos = None
        cover["state"] = "stopped"
        cover["apower"] = 0.0
        self._notify({key: {"id": 0, "state": "stopped", "apower": 0.0, "current_pos": cover["current_pos"]}})

    def _tick(self, dt: float) -> None:
        sw = self.status.get("switch:0")
        if sw is not None and sw["output"]:
            sw["aenergy"]["total"] = round(sw["aenergy"]["total"] + sw["apower"] * dt / 3600.0, 3)
            sw["apower"] = round(self.load_watts * random.uniform(0.97, 1.03), 1)
            self._notify({"switch:0": {"id": 0, "apower": sw["apower"], "aenergy": sw["aenergy"]}})
        cover = self.status.get("cover:0")
        if cover is not None and self._target_pos is not None:
            step = 100.0 / self.travel_s * dt
            pos, target = cover["current_pos"], self._target_pos
            pos = min(target, pos + step) if target > pos else max(target, pos - step)
            cover["current_pos"] = round(pos)
            if cover["current_pos"] == target:
                self._target_pos = None
                cover["state"] = "open" if target == 100 else "closed" if target == 0 else "stopped"
                cover["apower"] = 0.0
            self._notify({"cover:0": {"id": 0, "current_pos": cover["current_pos"], "state": cover["state"],
                                      "apower": cover["apower"]}})

    def _notify(self, params: dict[str, Any]) -> None:
        params = {"ts": round(time.time(), 2), **params}
        for ws, dst in list(self._clients.items()):
            frame = {"src": self.device_id, "dst": dst, "method": "NotifyStatus", "params": params}
            asyncio.get_running_loop().create_task(self._send(ws, frame))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await ws.send_str(json.dumps(frame))

    # -- HTTP / WebSocket -------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/shelly", self._get_shelly)
        app.router.add_get("/rpc", self._ws)
        app.router.add_route("*", "/rpc/{method}", self._http_rpc)
        return app

    async def _get_shelly(self, request: web.Request) -> web.Response:
        return web.json_response(self.device_info())

    async def _http_rpc(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = {}
        for key, raw in request.query.items():
            try:
                params[key] = json.loads(raw)
            except ValueError:
                params[key] = raw
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"code": ERR_INVALID_ARGUMENT, "message": "bad JSON"}, status=400)
            if isinstance(body, dict):
                params.update(body)
        try:
            return web.json_response(self.call(request.match_info["method"], params))
        except RpcError as err:
            return web.json_response({"code": err.code, "message": str(err)}, status=400 if err.code != 404 else 404)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._clients[ws] = "unknown"
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(frame, dict) or "method" not in frame:
                    continue
                src = str(frame.get("src", "unknown"))
                self._clients[ws] = src
                reply: dict[str, Any] = {"id": frame.get("id"), "src": self.device_id, "dst": src}
                try:
                    reply["result"] = self.call(str(frame["method"]), frame.get("params") or {})
                except RpcError as err:
                    reply["error"] = {"code": err.code, "message": str(err)}
                await ws.send_str(json.dumps(reply))
        finally:
            self._clients.pop(ws, None)
        return ws

    # -- lifecycle ------------------------------------------------------------------------
    def txt(self) -> dict[str, str]:
        return {"gen": "2", "app": MODELS[self.model]["app"], "ver": VERSION, "id": self.device_id,
                "fw_id": FW_ID, "arch": "esp8266"}

    async def start(self) -> None:
        await self.server.start()
        if self.advertiser is not None and self._service is None:
            self._service = await self.advertiser.register(MDNS_TYPE, self.device_id, self.host, self.port, self.txt())
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._tick(0.5)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close()
        await self.server.stop()
        if self.advertiser is not None and self._service is not None:
            await self.advertiser.unregister(self._service)
            self._service = None
