"""Test helpers for driver authors: wait for a condition, and resolve a simulator's advert into MdnsInfo."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hub.discovery.models import MdnsInfo

from .mdns_probe import browse


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` (a bound, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def resolve_advert(type_: str, host: str, port: int, timeout: float = 15.0) -> MdnsInfo:
    """The real mDNS resolution of the service at host:port, as the hub's discovery would see it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await browse(type_, timeout=min(5.0, deadline - loop.time()), expect=1000,
                            until=lambda i: host in i.addresses and i.port == port)
        for info in found:
            if host in info.addresses and info.port == port:
                return info
    raise AssertionError(f"no {type_} advert for {host}:{port} within {timeout:g} s")
