"""Shared plumbing for the protocol-true simulators: real mDNS advertising and an aiohttp server per appliance."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf


class MdnsAdvertiser:
    """One zeroconf instance bound to one address (loopback, or a namespace host), advertising many services.

    Never binds all interfaces: simulators must not multicast on the machine's real network.
    """

    def __init__(self, bind: str = "127.0.0.1") -> None:
        self.bind = bind
        self._zc: AsyncZeroconf | None = None
        self._infos: dict[str, AsyncServiceInfo] = {}

    async def start(self) -> None:
        if self._zc is None:
            self._zc = AsyncZeroconf(interfaces=[self.bind], ip_version=IPVersion.V4Only)

    async def register(self, type_: str, instance: str, host: str, port: int, properties: Mapping[str, str],
                       server: str | None = None) -> AsyncServiceInfo:
        await self.start()
        assert self._zc is not None
        type_ = type_ if type_.endswith(".local.") else f"{type_.rstrip('.')}.local."
        info = AsyncServiceInfo(
            type_, f"{instance}.{type_}", addresses=[socket.inet_aton(host)], port=port,
            properties=dict(properties), server=server or f"{instance}.local.",
        )
        # A name already taken on the link gets a new one, as RFC 6762 section 9 asks of real devices.
        task = await self._zc.async_register_service(info, allow_name_change=True)
        await task
        self._infos[info.name] = info
        return info

    async def update(self, info: AsyncServiceInfo) -> None:
        assert self._zc is not None
        await (await self._zc.async_update_service(info))

    async def unregister(self, info: AsyncServiceInfo) -> None:
        if self._zc is not None and info.name in self._infos:
            del self._infos[info.name]
            with contextlib.suppress(Exception):
                await (await self._zc.async_unregister_service(info))

    async def close(self) -> None:
        if self._zc is not None:
            with contextlib.suppress(Exception):
                await self._zc.async_unregister_all_services()
            await self._zc.async_close()
            self._zc = None
            self._infos.clear()


class HttpServer:
    """An aiohttp app on (host, port); port 0 picks a free one, kept across stop/start (a device restart)."""

    def __init__(self, app_factory: Callable[[], web.Application], host: str, port: int = 0) -> None:
        self.app_factory = app_factory
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app_factory(), handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        if self.port == 0 and server is not None:
            sockets: Any = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
