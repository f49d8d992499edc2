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
from .auth import Principal
from .keys import API_KEY, PRINCIPAL_KEY

__all__ = ["ACTIONS", "DiscoveryInbox", "add_routes"]

ACTIONS = ("adopt", "ignore", "unignore", "confirm_move", "reject_move")


@runtime_checkable
class DiscoveryInbox(Protocol):
    """What the ``discovery`` component offers the dashboard."""

    def inbox_entries(self) -> list[Any]: ...

    async def async_unignore(self, key: str) -> Any: ...

    async def async_adopt(self, key: str, bind_key: str | None = None) -> Any: ...

    async def async_ignore(self, key: str) -> Any: ...


def _principal(request: web.Request) -> Principal:
    principal: Principal = request[PRINCIPAL_KEY]
    return principal


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
    admin = _principal(request).admin
    entries = [_plain(e) for e in inbox.inbox_entries()] if inbox is not None and admin else []
    body = {"available": inbox is not None, "entries": entries, "admin_only": not admin}
    return web.Response(text=ha_format.dumps(body), content_type="application/json")


async def discovery_action(request: web.Request) -> web.Response:
    if not _principal(request).admin:
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
            body = await request.json()
            bind_key = body.get("bind_key") if isinstance(body, dict) else None
            # {"setup_code": "MT:..."} (or the manual code) commissions a Matter appliance; never sent back either.
            setup_code = body.get("setup_code") if isinstance(body, dict) else None
            if setup_code is not None:
                result = await inbox.async_adopt(key, bind_key=bind_key, setup_code=setup_code)  # type: ignore[call-arg]
            else:
                result = await inbox.async_adopt(key, bind_key=bind_key)
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


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/discovery", discovery_list)
    app.router.add_post(r"/api/discovery/{key}/{action:" + "|".join(ACTIONS) + "}", discovery_action)
