"""mDNS/DNS-SD discovery with python-zeroconf's asyncio API.

One :class:`AsyncZeroconf` (shared, or created here on the configured interfaces)
browses every service type the installed drivers declare. Each added or updated
service is resolved with retries: a resolve can time out although the answers are
already cached, and a fresh :class:`AsyncServiceInfo` then succeeds at once (seen
on loopback). Goodbye packets (TTL 0, RFC 6762 section 10.1) arrive as ``Removed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from zeroconf import BadTypeInNameException, InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from .models import MdnsInfo
from .parse import ParseStats, mdns_info

_LOGGER = logging.getLogger(__name__)

RESOLVE_TIMEOUT_MS = 1500
RESOLVE_ATTEMPTS = 4
RESOLVE_PAUSE = 0.25
CACHE_FLUSH_DELAY = 1.2


async def async_resolve(
    zc: Zeroconf, service_type: str, name: str, *, attempts: int = RESOLVE_ATTEMPTS,
    timeout_ms: int = RESOLVE_TIMEOUT_MS, stats: ParseStats | None = None, ip_version: IPVersion = IPVersion.V4Only,
) -> tuple[MdnsInfo | None, int]:
    """The one mDNS resolver (the hub's sources, the conformance kit, the demo): ``(info, retries)``.

    ``info`` is None when the name is invalid, the service does not answer within ``attempts`` tries,
    or what it answers is unusable; its TXT record goes through :func:`~.parse.mdns_info`, which drops
    malformed keys, oversize values and bad ports (counted in ``stats``).
    """
    retries = 0
    for attempt in range(attempts):
        try:
            service = AsyncServiceInfo(service_type, name)
        except BadTypeInNameException:
            if stats is not None:
                stats["mdns_name_invalid"] += 1
            return None, retries
        # A fresh object each attempt: a timed-out one can stay stuck although the cache is complete.
        if service.load_from_cache(zc) or await service.async_request(zc, timeout_ms):
            return mdns_info(service_type, name, service.server, service.parsed_scoped_addresses(ip_version),
                             service.port, service.properties, stats=stats), retries
        retries += 1
        if attempt + 1 < attempts:
            await asyncio.sleep(RESOLVE_PAUSE * (attempt + 1))
    return None, retries


class MdnsSource:
    """Browses service types and reports resolved services and goodbyes.

    ``on_found(info)`` is called for every new or changed resolution (also for address
    changes); ``on_removed(type, name)`` when a service says goodbye or expires.
    """

    def __init__(
        self,
        types: Iterable[str],
        on_found: Callable[[MdnsInfo], None],
        on_removed: Callable[[str, str], None],
        *,
        interfaces: list[str] | None = None,
        zeroconf: AsyncZeroconf | None = None,
        stats: ParseStats | None = None,
        ipv6: bool = False,
    ) -> None:
        self.types = sorted(set(types))
        # IPv4 unless asked: Matter appliances announce over IPv6 (often only there), most others over IPv4.
        self.ip_version = IPVersion.All if ipv6 else IPVersion.V4Only
        self._on_found = on_found
        self._on_removed = on_removed
        self._interfaces = interfaces
        self._shared = zeroconf
        self.aiozc: AsyncZeroconf | None = zeroconf
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._last: dict[str, MdnsInfo] = {}
        self.stats = stats if stats is not None else ParseStats()
        self.resolve_retries = 0
        self.resolve_failures = 0

    @property
    def services(self) -> dict[str, MdnsInfo]:
        """The services resolved and not removed, by instance name."""
        return dict(self._last)

    async def async_start(self) -> None:
        if self.aiozc is None:
            # No interfaces configured means every interface: only right on a real home network.
            interfaces = self._interfaces or InterfaceChoice.All
            self.aiozc = AsyncZeroconf(interfaces=interfaces, ip_version=self.ip_version)
        if self.types:
            self._browser = AsyncServiceBrowser(self.aiozc.zeroconf, self.types, handlers=[self._on_change])

    async def async_stop(self) -> None:
        for task in list(self._resolving.values()):
            task.cancel()
        if self._resolving:
            await asyncio.gather(*self._resolving.values(), return_exceptions=True)
        self._resolving.clear()
        self._last.clear()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self.aiozc is not None and self._shared is None:
            await self.aiozc.async_close()
        self.aiozc = None if self._shared is None else self._shared

    def _recheck(self, service_type: str, name: str) -> None:
        if name in self._last and self.aiozc is not None:
            self._on_change(self.aiozc.zeroconf, service_type, name, ServiceStateChange.Updated)

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            task = self._resolving.pop(name, None)
            if task is not None:
                task.cancel()
            self._again.discard(name)
            if self._last.pop(name, None) is not None:
                self._guard(self._on_removed, service_type, name)
            return
        if name in self._resolving:
            self._again.add(name)  # resolve once more after the one in flight: the records changed
            return
        self._resolving[name] = asyncio.get_running_loop().create_task(self._resolve(service_type, name))

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self.aiozc is not None
        try:
            while True:
                info = await self._request(service_type, name)
                if info is not None:
                    self._report(info)
                if name not in self._again:
                    return
                self._again.discard(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("Resolving %s failed", name)
        finally:
            self._resolving.pop(name, None)

    async def _request(self, service_type: str, name: str) -> MdnsInfo | None:
        assert self.aiozc is not None
        info, retries = await async_resolve(self.aiozc.zeroconf, service_type, name, stats=self.stats,
                                            ip_version=self.ip_version)
        self.resolve_retries += retries
        if info is None and retries == RESOLVE_ATTEMPTS:
            self.resolve_failures += 1
            _LOGGER.debug("Could not resolve %s after %d attempts", name, RESOLVE_ATTEMPTS)
        return info

    def _report(self, info: MdnsInfo) -> None:
        previous = self._last.get(info.name)
        if previous is not None and previous.server != info.server and previous.server:
            # Two hosts claiming one instance name: RFC 6762 section 9 says they must rename; count it.
            self.stats["mdns_name_collision"] += 1
        if previous is not None and (previous.addresses, previous.port, previous.properties, previous.server) == (
                info.addresses, info.port, info.properties, info.server):
            return
        self._last[info.name] = info
        if previous is not None:
            # A changed record set flushes the old records one second later (RFC 6762 section 10.2), and
            # that expiry raises no browser event: look again after it so a stale address does not linger.
            asyncio.get_running_loop().call_later(CACHE_FLUSH_DELAY, self._recheck, info.type, info.name)
        self._guard(self._on_found, info)

    @staticmethod
    def _guard(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            _LOGGER.exception("Discovery callback failed for %s", args[-1] if args else None)


SERVICE_TYPE_ENUMERATION = "_services._dns-sd._udp.local."  # RFC 6763 section 9


async def async_service_types(aiozc: AsyncZeroconf, seconds: float) -> list[str]:
    """The service types hosts on the network announce (DNS-SD service type enumeration)."""
    types: set[str] = set()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed and name.endswith((".local.", ".local")):
            types.add(name if name.endswith(".") else name + ".")

    browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE_ENUMERATION], handlers=[on_change])
    try:
        await asyncio.sleep(seconds)
    finally:
        await browser.async_cancel()
    return sorted(types)


async def async_browse(types: Iterable[str] | None, seconds: float, interfaces: list[str] | None,
                       ) -> list[MdnsInfo]:
    """Browse for a while and return what answered (for ``qilu-hub discover``).

    Without ``types``, the first third of the time asks which types exist (RFC 6763 section 9).
    """
    found: dict[str, MdnsInfo] = {}
    aiozc = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    try:
        if types is None:
            types = await async_service_types(aiozc, seconds / 3)
            seconds -= seconds / 3
        if not types:
            return []
        return await _browse(aiozc, types, seconds, found)
    finally:
        await aiozc.async_close()


async def _browse(aiozc: AsyncZeroconf, types: Iterable[str], seconds: float,
                  found: dict[str, MdnsInfo]) -> list[MdnsInfo]:

    def removed(_type: str, name: str) -> None:
        found.pop(name, None)

    source = MdnsSource(types, lambda info: found.__setitem__(info.name, info), removed, zeroconf=aiozc)
    await source.async_start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await source.async_stop()
    return sorted(found.values(), key=lambda i: i.name)
