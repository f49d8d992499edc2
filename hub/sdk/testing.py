"""Test and simulation helpers for driver authors: what a driver's simulator and tests may import.

``HttpServer`` and ``MdnsAdvertiser`` make a protocol-true simulator (a real aiohttp server, real mDNS
bound to one address); ``resolve_advert`` resolves its advert as the hub's discovery would; ``wait_for``
bounds a wait in tests; ``BluezMock`` puts simulated BLE sensors on python-dbusmock's BlueZ (imported on
first use: it needs dbus-fast).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..discovery.models import MdnsInfo
from ._context import DeviceContext
from ._simulation import HttpServer, MdnsAdvertiser

if TYPE_CHECKING:
    from ._ble_mock import BluezMock

__all__ = ["BluezMock", "DeviceContext", "HttpServer", "MdnsAdvertiser", "resolve_advert", "wait_for"]


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
    # The resolver lives with the appliance lifecycle, above the SDK: imported when a test asks for it.
    from drivers.mdns_probe import browse

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await browse(type_, timeout=min(5.0, deadline - loop.time()), expect=1000,
                             until=lambda i: host in i.addresses and i.port == port)
        for info in found:
            if host in info.addresses and info.port == port:
                return info
    raise AssertionError(f"no {type_} advert for {host}:{port} within {timeout:g} s")


def __getattr__(name: str) -> Any:
    if name == "BluezMock":
        from ._ble_mock import BluezMock

        return BluezMock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
