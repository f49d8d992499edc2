"""The discovery inbox over REST: list what the hub has seen, and adopt, ignore, or confirm a move.

``GET /api/discovery`` lists the inbox; ``POST /api/discovery/{key}/{action}`` acts on one entry, where the
action is ``adopt`` (optionally with ``{"bind_key": ...}`` for an encrypted BLE sensor, or ``{"setup_code": ...}``
for a Matter appliance), ``ignore``,
``unignore``, or, for an adopted appliance announced at another address, ``confirm_move`` / ``reject_move``.

The inbox is provided by the component named ``discovery`` when one is added; it is duck-typed
(:class:`DiscoveryInbox`) so the API needs no import of it. Without one the dashboard shows an empty inbox.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from . import ha_format
from .keys import API_KEY, principal_of

__all__ = ["ACTIONS", "DiscoveryInbox", "add_routes"]

ACTIONS = ("adopt", "ignore", "unignore", "confirm_move", "reject_move")


@runtime_checkable
class DiscoveryInbox(Protocol):
    """What the ``discovery`` component offers the dashboard."""

    def inbox_entries(self) -> list[Any]: ...

    async def async_unignore(self, key: str) -> Any: ...

    async def async_adopt(self, key: str, bind_key: str | None = None) -> Any: ...

    async def async_ignore(self, key: str) -> Any: ...



def _inbox(request: web.Request) -> DiscoveryInbox | None:
    component = request.app[API_KEY].hub.components.get("discovery")
    return component if isinstance(component, DiscoveryInbox) else None


def _plain(entry: Any) -> Any:
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    if hasattr(entry, "__dataclass_fields__"):
        return asdict(entry)
    return entry


async def discovery_list(request: web.Request) -> web.Response:
    inbox = _inbox(request)
    # Unadopted appliances (names, addresses, MACs) anywhere in the home are for admins only: a guest's
    # area token must not map the house. Others get an empty list so their dashboard still renders.
    admin = principal_of(request).admin
    entries = [_plain(e) for e in inbox.inbox_entries()] if inbox is not None and admin else []
    body = {"available": inbox is not None, "entries": entries, "admin_only": not admin}
    return web.Response(text=ha_format.dumps(body), content_type="application/json")


async def discovery_action(request: web.Request) -> web.Response:
    if not principal_of(request).admin:
        return web.json_response({"message": "adopting or ignoring devices needs an admin token"}, status=403)
    inbox = _inbox(request)
    if inbox is None:
        return web.json_response({"message": "discovery is not running"}, status=404)
    key, action = request.match_info["key"], request.match_info["action"]
    handlers = {"adopt": inbox.async_adopt, "ignore": inbox.async_ignore, "unignore": inbox.async_unignore}
    # An adopted appliance announced elsewhere waits for these (discovery's "address change, confirm").
    for name in ("confirm_move", "reject_move"):
        handler = getattr(inbox, f"async_{name}", None)
        if callable(handler):
            handlers[name] = handler
    if action not in handlers:
        return web.json_response({"message": f"discovery does not support {action}"}, status=404)
    try:
        # body_exists, not can_read_body: the body-deadline middleware has already read the body into memory.
        if action == "adopt" and request.body_exists:
            # {"bind_key": "<32 hex digits>"} for an encrypted BLE sensor; the key is never sent back.
            # {"name": ..., "area_id": ...}: the household names the device and puts it in a room as it adopts it.
            body = await request.json()
            body = body if isinstance(body, dict) else {}
            naming = _naming(request, body)
            if isinstance(naming, str):
                return web.json_response({"message": naming}, status=400)
            # {"setup_code": "MT:..."} (or the manual code) commissions a Matter appliance; never sent back either.
            if "setup_code" in body:
                result = await inbox.async_adopt(  # type: ignore[call-arg]
                    key, bind_key=body.get("bind_key"), setup_code=body["setup_code"]
                )
            elif "bind_key" in body:
                result = await inbox.async_adopt(key, bind_key=body["bind_key"])
            else:  # a name and a room only: the protocol's one-argument call (bind_key is optional there)
                result = await inbox.async_adopt(key)
            _name_device(request, result, naming)
        else:
            result = await handlers[action](key)
    except KeyError:
        return web.json_response({"message": f"no inbox entry {key!r}"}, status=404)
    except ValueError as err:
        return web.json_response({"message": str(err)}, status=400)
    except Exception as err:  # the appliance did not answer; discovery keeps retrying in the background
        return web.json_response({"message": f"{action} failed: {err}"}, status=502)
    return web.Response(text=ha_format.dumps({"ok": True, "result": _plain(result)}),
                        content_type="application/json")


MAX_NAME = 100


def _naming(request: web.Request, body: dict[str, Any]) -> dict[str, str] | str:
    """The device registry changes an adopt body asks for (name_by_user, area_id), or why they are refused:
    checked before adopting, so a bad room does not leave a half-done adoption behind."""
    changes: dict[str, str] = {}
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name.strip()) > MAX_NAME or any(ord(c) < 32 for c in name):
            return f"name must be text of at most {MAX_NAME} printable characters"
        if name.strip():
            changes["name_by_user"] = name.strip()
    area_id = body.get("area_id")
    if area_id is not None:
        if not isinstance(area_id, str) or request.app[API_KEY].hub.areas.get(area_id) is None:
            return f"no such area: {area_id!r}"
        changes["area_id"] = area_id
    return changes


def _name_device(request: web.Request, result: Any, changes: dict[str, str]) -> None:
    """Apply the adopt body's name and room to the adopted device (``async_adopt`` answers its device id)."""
    devices = request.app[API_KEY].hub.devices
    device_id = result if isinstance(result, str) else result.get("device_id") if isinstance(result, dict) else None
    if not changes or not isinstance(device_id, str) or devices.get(device_id) is None:
        return
    device = devices.get(device_id)
    if device is not None and changes.get("name_by_user") == device.name:
        changes = {k: v for k, v in changes.items() if k != "name_by_user"}  # its own name: nothing to override
    if changes:
        devices.async_update(device_id, **changes)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/discovery", discovery_list)
    app.router.add_post(r"/api/discovery/{key}/{action:" + "|".join(ACTIONS) + "}", discovery_action)
