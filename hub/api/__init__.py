"""The hub's API: Home Assistant-compatible WebSocket and REST, the msgpack stream, the dashboard."""

from .client_tls import import_aiohttp

import_aiohttp()  # before anything imports aiohttp: its client TLS contexts read the CA store on first use

from .app import ApiServer, build_app  # noqa: E402
from .auth import LoginLimiter, Principal  # noqa: E402
from .inbox import DiscoveryInbox  # noqa: E402

__all__ = ["ApiServer", "DiscoveryInbox", "LoginLimiter", "Principal", "build_app"]
