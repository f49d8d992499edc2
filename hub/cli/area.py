"""``qilu-hub area add|rename|remove|list`` and ``qilu-hub device rename|move``: the household's areas and names.

A running hub owns its registry (it holds ``CONFIG_DIR/.lock`` and keeps the registries in memory), so while
one runs on the configuration directory, or when ``--hub URL`` names one, the change goes through its Home
Assistant WebSocket API (``config/*_registry/*``, with a token from ``--token`` or ``$QILU_HUB_TOKEN``) and
reaches its clients at once. With no hub running the CLI edits the registry database itself, holding the
directory's lock meanwhile so that a hub cannot start half-way. Both ways run the same checks
(``qilu_hub.registry_edit``). A device is named by its id, its name or a prefix of it only one device has; an
area by its id or name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..bus import EventBus
from ..capabilities import CommandError
from ..config import ensure_config_dir, load_config
from ..const import CONFIG_FILE, DEFAULT_PORT, REGISTRY_DB
from ..dir_lock import DirLock
from ..model import slugify
from ..registry import AreaRegistry, DeviceRegistry, EntityRegistry
from ..registry_edit import RegistryEditor, match_name
from ..storage import RegistryStore
from . import TOKEN_ENV, CliError, config_dir, spread_options, token_from_env

TIMEOUT = 10.0


def register(subparsers: Any) -> None:
    area = subparsers.add_parser("area", help="add, rename, remove or list areas (rooms)")
    area_sub = area.add_subparsers(dest="area_command", metavar="ACTION", required=True)
    add = area_sub.add_parser("add", help="add an area")
    add.add_argument("name")
    add.add_argument("--floor", default=None, help="the floor it is on")
    add.add_argument("--icon", default=None, help="an icon name such as mdi:sofa")
    add.set_defaults(func=cmd_area_add)
    rename = area_sub.add_parser("rename", help="rename an area (its id stays, so tokens scoped to it keep working)")
    rename.add_argument("area", help="the area's id or name")
    rename.add_argument("name", help="the new name")
    rename.set_defaults(func=cmd_area_rename)
    remove = area_sub.add_parser("remove", help="remove an empty area (move its devices out first)")
    remove.add_argument("area", help="the area's id or name")
    remove.set_defaults(func=cmd_area_remove)
    area_sub.add_parser("list", help="list areas and how many devices each holds").set_defaults(func=cmd_area_list)

    device = subparsers.add_parser("device", help="rename a device or move it to another area")
    device_sub = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    rename_device = device_sub.add_parser("rename", help="give a device the household's own name")
    rename_device.add_argument("device", help="the device's id, name, or a name prefix only it has")
    names = rename_device.add_mutually_exclusive_group(required=True)
    names.add_argument("name", nargs="?", help="the new name")
    names.add_argument("--reset", action="store_true", help="go back to the name the device reported")
    rename_device.set_defaults(func=cmd_device_rename)
    move = device_sub.add_parser("move", help="put a device in an area")
    move.add_argument("device", help="the device's id, name, or a name prefix only it has")
    places = move.add_mutually_exclusive_group(required=True)
    places.add_argument("area", nargs="?", help="the area's id or name")
    places.add_argument("--no-area", action="store_true", help="take it out of every area")
    move.set_defaults(func=cmd_device_move)
    for parser in (area, device):
        parser.add_argument("--hub", default=None,
                            help="a running hub's URL (default: the hub running on --config, if any)")
        parser.add_argument("--token", default=None, help=f"access token for a running hub (default: ${TOKEN_ENV})")
        spread_options(parser, ("hub", "token"))


# -- the two ways to the registry --------------------------------------------------------------
@dataclass
class Listing:
    areas: list[dict[str, Any]]
    devices: list[dict[str, Any]]


class Offline:
    """The registry database of a stopped hub, edited directly (the directory's lock held throughout)."""

    def __init__(self, editor: RegistryEditor) -> None:
        self.editor = editor

    def call(self, type_: str, **fields: Any) -> Any:
        from ..api import registry_ws  # the same shapes as the API answers; imported only when used

        editor = self.editor
        if type_ == "config/area_registry/list":
            return [registry_ws.area_entry(a) for a in editor.areas.all()]
        if type_ == "config/device_registry/list":
            return [registry_ws.device_entry(d) for d in editor.devices.all()]
        if type_ == "config/area_registry/create":
            return registry_ws.area_entry(editor.create_area(fields))
        if type_ == "config/area_registry/update":
            return registry_ws.area_entry(editor.update_area(fields.pop("area_id"), fields))
        if type_ == "config/area_registry/delete":
            editor.delete_area(fields["area_id"])
            return "success"
        if type_ == "config/device_registry/update":
            return registry_ws.device_entry(editor.update_device(fields.pop("device_id"), fields))
        raise AssertionError(type_)


class Online:
    """A running hub, through its Home Assistant WebSocket API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, type_: str, **fields: Any) -> Any:
        return asyncio.run(self._call(type_, fields))

    async def _call(self, type_: str, fields: dict[str, Any]) -> Any:
        # Here, not at the top: every command builds the whole parser and so imports this module, and aiohttp
        # imported before the API reads the CA bundle twice (~0.1 s and 2 MiB on each `qilu-hub run`).
        import aiohttp

        ws_url = ("wss:" if self.url.startswith("https:") else "ws:") + self.url.split(":", 1)[1] + "/api/websocket"
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(ws_url) as ws:
                await ws.receive_json()  # auth_required
                await ws.send_json({"type": "auth", "access_token": self.token})
                auth = await ws.receive_json()
                if auth.get("type") != "auth_ok":
                    raise CliError(f"the hub at {self.url} refused the token: {auth.get('message', auth)}")
                await ws.send_json({"id": 1, "type": type_, **fields})
                reply = await ws.receive_json()
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise CliError(f"cannot reach the hub at {self.url}: {err or type(err).__name__}") from None
        except (ValueError, TypeError) as err:
            raise CliError(f"the hub at {self.url} did not answer as expected: {err}") from None
        if not reply.get("success"):
            error = reply.get("error") or {}
            raise CommandError(str(error.get("code", "unknown_error")), str(error.get("message", "refused")))
        return reply.get("result")


def _hub_url(args: argparse.Namespace) -> str:
    """The running hub's address, as its configuration says it listens (loopback for a wildcard bind)."""
    conf = load_config(config_dir(args)).get("hub") or {}
    host = str(conf.get("bind") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if conf.get("tls_certificate") else "http"
    return f"{scheme}://{host}:{conf.get('port') or DEFAULT_PORT}"


@contextlib.contextmanager
def registry(args: argparse.Namespace) -> Iterator[Offline | Online]:
    """The way to the registry: a running hub's API, or the database of a stopped one."""
    hub_url = getattr(args, "hub", None)
    directory = config_dir(args)
    lock = DirLock(directory) if hub_url is None and directory.is_dir() else None
    if hub_url is None and (lock is None or lock.acquire()):
        directory = ensure_config_dir(directory)
        lock = lock or DirLock(directory)
        if not lock.acquire():
            raise CliError(f"a qilu-hub started on {directory} just now; run the command again")
        store = RegistryStore(directory / REGISTRY_DB)
        try:
            bus = EventBus()
            areas, devices = AreaRegistry(store, bus), DeviceRegistry(store, bus)
            yield Offline(RegistryEditor(areas, devices, EntityRegistry(store, bus, devices, areas)))
        finally:
            store.close()
            lock.release()
        return
    token = getattr(args, "token", None) or token_from_env()
    where = hub_url or _hub_url(args)
    if not token:
        raise CliError(f"a qilu-hub is running on {directory}, so the change must go through it: give a token "
                       f"that may make it with --token or ${TOKEN_ENV} (qilu-hub token create --name NAME --admin)")
    yield Online(where, token)


def _run(args: argparse.Namespace, action: Any) -> int:
    try:
        with registry(args) as reg:
            print(action(reg))
    except CommandError as err:
        raise CliError(f"{err.message} [{err.code}]") from None
    return 0


def _area_id(reg: Offline | Online, text: str) -> str:
    areas = reg.call("config/area_registry/list")
    for area in areas:
        if text == area["area_id"]:
            return str(area["area_id"])
    return match_name(text, [(a["area_id"], (a["name"],)) for a in areas], "area", "qilu-hub area list")


def _device(reg: Offline | Online, text: str) -> dict[str, Any]:
    devices = {d["id"]: d for d in reg.call("config/device_registry/list")}
    if text in devices:
        return devices[text]
    found = match_name(text, [(d["id"], tuple(n for n in (d["name_by_user"], d["name"]) if n))
                              for d in devices.values()], "device", "qilu-hub devices")
    return devices[found]


def _device_name(device: dict[str, Any]) -> str:
    return str(device.get("name_by_user") or device.get("name"))


# -- handlers -----------------------------------------------------------------------------------
def cmd_area_add(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        area = reg.call("config/area_registry/create", name=args.name, floor_id=args.floor, icon=args.icon)
        return f"added area {area['name']} (id {area['area_id']})"
    return _run(args, act)


def cmd_area_rename(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        area_id = _area_id(reg, args.area)
        area = reg.call("config/area_registry/update", area_id=area_id, name=args.name)
        return f"area {area['area_id']} is now called {area['name']}"
    return _run(args, act)


def cmd_area_remove(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        area_id = _area_id(reg, args.area)
        reg.call("config/area_registry/delete", area_id=area_id)
        if getattr(args, "hub", None) is None and config_dir(args).is_dir():
            listed = {slugify(str(a.get("name", ""))) for a in load_config(config_dir(args)).get("areas") or []}
            if area_id in listed:
                print(f"qilu-hub: note: {CONFIG_FILE} lists this area; the hub adds it again when it starts "
                      "unless it is removed there too", file=sys.stderr)
        return f"removed area {area_id}"
    return _run(args, act)


def cmd_area_list(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        areas = reg.call("config/area_registry/list")
        devices = reg.call("config/device_registry/list")
        lines = [f"{'ID':<24}{'NAME':<28}{'FLOOR':<14}DEVICES"]
        for area in sorted(areas, key=lambda a: a["name"].casefold()):
            held = sorted(_device_name(d) for d in devices if d["area_id"] == area["area_id"])
            lines.append(f"{area['area_id'][:23]:<24}{area['name'][:27]:<28}{(area['floor_id'] or '-')[:13]:<14}"
                         f"{', '.join(held) or '-'}")
        loose = sorted(_device_name(d) for d in devices if not d["area_id"])
        if loose:
            lines.append(f"{'-':<24}{'(no area)':<28}{'-':<14}{', '.join(loose)}")
        return "\n".join(lines)
    return _run(args, act)


def cmd_device_rename(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        device = _device(reg, args.device)
        new = None if args.reset else args.name
        updated = reg.call("config/device_registry/update", device_id=device["id"], name_by_user=new)
        return f"device {updated['id'][:8]} ({updated['name']}) is now called {_device_name(updated)}"
    return _run(args, act)


def cmd_device_move(args: argparse.Namespace) -> int:
    def act(reg: Offline | Online) -> str:
        device = _device(reg, args.device)
        area_id = None if args.no_area else _area_id(reg, args.area)
        updated = reg.call("config/device_registry/update", device_id=device["id"], area_id=area_id)
        where = f"in area {updated['area_id']}" if updated["area_id"] else "in no area"
        return f"device {_device_name(updated)} is now {where}"
    return _run(args, act)
