"""Typed keys of the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .auth import Principal

if TYPE_CHECKING:
    from .app import ApiServer

API_KEY: web.AppKey[ApiServer] = web.AppKey("api")
# The token of an authenticated request and where it came from ("header" or "cookie").
CREDENTIALS_KEY: web.RequestKey[tuple[str, str]] = web.RequestKey("credentials", tuple)
# Who an authenticated request acts for (set by the auth middleware, read by every handler).
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def api_of(request: web.Request) -> ApiServer:
    """The API server that handles ``request``."""
    api: ApiServer = request.app[API_KEY]
    return api


def principal_of(request: web.Request) -> Principal:
    """Who ``request`` acts for (authenticated routes only: the auth middleware sets it)."""
    principal: Principal = request[PRINCIPAL_KEY]
    return principal
