"""A generic simulated appliance host: registers N DNS-SD services with TXT records.

In-process: ``async with Responder(["127.0.0.1"], QD_TYPE, 3) as r: ...``;
``await r.update(i, address=..., properties=...)`` changes a service (address change,
rename of the friendly name), ``await r.unregister(i)`` sends its goodbye.

As a process (for other namespaces)::

    python -m tests.testbeds.mdns_responder IP N TYPE TAG [key=value ...]

prints ``registered N`` when all services are announced, then reads commands on
stdin: ``goodbye I``, ``address I NEWIP``, ``quit``. Service i is named
``<TAG>-<i>`` with TXT ``id=<TAG>-<i>`` (the stable key), ``mac``, plus the extra pairs.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import zlib
from collections.abc import Mapping

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf


def mac_for(tag: str, i: int) -> str:
    """A locally administered MAC, the same in every process for the same tag and index."""
    digest = zlib.crc32(tag.encode()) & 0xFFFFFF
    return f"02:78:{digest >> 16:02x}:{digest >> 8 & 0xFF:02x}:{digest & 0xFF:02x}:{i & 0xFF:02x}"


class Responder:
    def __init__(self, interfaces: list[str], type_: str, count: int, tag: str = "app", address: str | None = None,
                 extra: Mapping[str, str] | None = None, port: int = 8000) -> None:
        self.interfaces = interfaces
        self.type = type_
        self.count = count
        self.tag = tag
        self.address = address or interfaces[0]
        self.extra = dict(extra or {})
        self.port = port
        self.aiozc: AsyncZeroconf | None = None
        self.infos: list[AsyncServiceInfo] = []

    def service_name(self, i: int) -> str:
        return f"{self.tag}-{i:03d}.{self.type}"

    def key(self, i: int) -> str:
        return f"{self.tag}-{i:03d}"

    def info(self, i: int, address: str | None = None, properties: Mapping[str, str | bytes] | None = None,
             ) -> AsyncServiceInfo:
        props: dict[str, str | bytes] = {"id": self.key(i), "mac": mac_for(self.tag, i), "name": f"Appliance {i}",
                                         **self.extra}
        props.update(properties or {})
        return AsyncServiceInfo(
            self.type, self.service_name(i), addresses=[socket.inet_aton(address or self.address)],
            port=self.port + i, properties=props, server=f"{self.tag}-{i:03d}.local.",
        )

    async def start(self) -> None:
        self.aiozc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        self.infos = [self.info(i) for i in range(self.count)]
        # Register concurrently: one by one costs about a second each for probing (RFC 6762 section 8.1).
        tasks = await asyncio.gather(*[self.aiozc.async_register_service(info) for info in self.infos])
        await asyncio.gather(*tasks)

    async def update(self, i: int, address: str | None = None,
                     properties: Mapping[str, str | bytes] | None = None) -> None:
        assert self.aiozc is not None
        self.infos[i] = self.info(i, address, properties)
        await (await self.aiozc.async_update_service(self.infos[i]))

    async def unregister(self, i: int) -> None:
        assert self.aiozc is not None
        await (await self.aiozc.async_unregister_service(self.infos[i]))

    async def stop(self) -> None:
        if self.aiozc is not None:
            await self.aiozc.async_unregister_all_services()
            await self.aiozc.async_close()
            self.aiozc = None

    async def __aenter__(self) -> Responder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _main(argv: list[str]) -> None:
    ip, count, type_, tag = argv[0], int(argv[1]), argv[2], argv[3]
    extra = dict(pair.split("=", 1) for pair in argv[4:])
    responder = Responder([ip], type_, count, tag, extra=extra)
    await responder.start()
    print(f"registered {count}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, *args = line.split()
        if cmd == "quit":
            break
        if cmd == "goodbye":
            await responder.unregister(int(args[0]))
        elif cmd == "address":
            await responder.update(int(args[0]), address=args[1])
        print(f"done {line}", flush=True)
    await responder.stop()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
