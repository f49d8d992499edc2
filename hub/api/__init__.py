"""The hub's API: Home Assistant-compatible WebSocket and REST, the msgpack stream, the dashboard."""

from .app import ApiServer, build_app
from .auth import LoginLimiter, Principal
from .inbox import DiscoveryInbox

__all__ = ["ApiServer", "DiscoveryInbox", "LoginLimiter", "Principal", "build_app"]
