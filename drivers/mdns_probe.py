"""Browse mDNS services into :class:`MdnsInfo` until enough answered (the conformance kit, the demo, tests).

Resolving is the hub's own (:func:`qilu_hub.discovery.mdns.async_resolve`): one resolver, with the hardening
of :mod:`qilu_hub.discovery.parse` (malformed TXT keys, oversize values and bad ports are dropped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from qilu_hub.discovery.mdns import async_resolve
from qilu_hub.discovery.models import MdnsInfo


async def resolve(zc: AsyncZeroconf, type_: str, name: str, tries: int = 6, timeout_ms: int = 1500) -> MdnsInfo | None:
    """Resolve one service with the hub's own hardened resolver (:func:`qilu_hub.discovery.mdns.async_resolve`)."""
    info, _retries = await async_resolve(zc.zeroconf, type_, name, attempts=tries, timeout_ms=timeout_ms)
    return info


async def browse(type_: str, *, interface: str = "127.0.0.1", timeout: float = 8.0, expect: int = 1,
                 zc: AsyncZeroconf | None = None, until: Callable[[MdnsInfo], bool] | None = None,
                 accept: Callable[[MdnsInfo], bool] | None = None) -> list[MdnsInfo]:
    """Resolve services of ``type_`` seen on ``interface`` until ``expect`` are found, one satisfies ``until``,
    or ``timeout`` passes. Services ``accept`` refuses (another process's, on a shared loopback) do not count."""
    own = zc is None
    zc = zc or AsyncZeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    type_ = type_ if type_.endswith(".local.") else f"{type_.rstrip('.')}.local."
    names: set[str] = set()
    found: dict[str, MdnsInfo] = {}
    refused: set[str] = set()

    def on_change(zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            names.add(name)

    browser = AsyncServiceBrowser(zc.zeroconf, [type_], handlers=[on_change])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < expect:
            if until is not None and any(until(i) for i in found.values()):
                break
            pending = [n for n in names if n not in found and n not in refused]
            if pending:
                results = await asyncio.gather(*(resolve(zc, type_, n, tries=1) for n in pending))
                for name, info in zip(pending, results, strict=True):
                    if info is not None and accept is not None and not accept(info):
                        refused.add(name)
                    elif info is not None:
                        found[name] = info
            else:
                await asyncio.sleep(0.1)
    finally:
        await browser.async_cancel()
        if own:
            await zc.async_close()
    return list(found.values())
