"""A real hub with virtual appliances and the API, driven in-process by the protocol targets."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

_STATE: dict[str, Any] = {}


class SinkSocket:
    """Stands in for aiohttp's WebSocketResponse: the targets read replies off the connection's queue."""

    async def close(self, **kwargs: Any) -> None:
        return None


def start() -> dict[str, Any]:
    if _STATE:
        return _STATE
    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer
    from qilu_hub.api.auth import Principal
    from qilu_hub.config import load_config
    from qilu_hub.virtual import VirtualAppliances

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    config_dir = tempfile.mkdtemp(prefix="fuzz-api-")
    config = load_config(config_dir)
    hub = Hub(config_dir, config)
    hub.add_component(VirtualAppliances(animate=False))
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    loop.run_until_complete(hub.async_start())
    principals = {}
    for name, scopes in (("admin", Scopes(admin=True)), ("read_only", Scopes(read_only=True)),
                         ("kitchen", Scopes(areas=frozenset({"kitchen"})))):
        _, secret = hub.tokens.create(name, scopes)
        principals[name] = api.principal_for(secret)
    assert all(isinstance(p, Principal) for p in principals.values())
    _STATE.update(loop=loop, hub=hub, api=api, principals=principals)
    return _STATE


def handle(loop: asyncio.AbstractEventLoop, conn: Any, msg: Any) -> None:
    """Hand ``msg`` to the connection inside the loop, as the socket handler does, and let its calls finish."""
    async def run() -> None:
        conn.handle(msg)
        for _ in range(3):
            await asyncio.sleep(0)
        if conn._calls:
            await asyncio.wait(list(conn._calls), timeout=2)

    loop.run_until_complete(run())
