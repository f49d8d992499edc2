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
