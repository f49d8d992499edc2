"""The hub's own mDNS record, ``_qilu-hub._tcp.local.``: how phones, headsets and the dashboard's QR code find it.

Advertised only when the API serves the LAN (bound to ``0.0.0.0``, ``::`` or a LAN address, not loopback) and
``hub.mdns`` is on. The TXT record says how to talk to the hub: ``scheme`` (``https`` with ``hub.tls: auto``
or a certificate of one's own, else ``http``), ``path`` of the dashboard, ``version``, and with the hub's own
CA its download path ``ca`` and fingerprint ``ca_sha256`` (so a client can check the CA it is about to trust
against what the hub announced on the LAN).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from .app import ApiServer

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_qilu-hub._tcp.local."
LOOPBACK_BINDS = frozenset({"127.0.0.1", "::1", "localhost"})


def serves_lan(bind: str) -> bool:
    try:
        return not ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return bind not in LOOPBACK_BINDS


def txt_record(api: ApiServer) -> dict[str, str]:
    txt = {"scheme": api.scheme, "path": "/", "version": api.hub.version}
    if api.tls is not None:
        from ..tls import fingerprint

        txt["ca"] = "/api/tls/ca.crt"
        txt["ca_sha256"] = fingerprint(api.tls.files.ca_certificate()).replace(":", "").lower()
    return txt


class HubAdvert:
    """One zeroconf instance registering the hub's record; ``interfaces`` None means every interface."""

    def __init__(self, interfaces: list[str] | None = None) -> None:
        self.interfaces = interfaces
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    async def start(self, api: ApiServer, addresses: list[str]) -> None:
        from zeroconf import InterfaceChoice
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        host = socket.gethostname().split(".")[0]
        name = str(api.hub.config.get("hub", {}).get("name") or "Home")
        packed = [ipaddress.ip_address(a).packed for a in addresses]
        self._info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=api.port,
                                      properties=txt_record(api), server=f"{host}.local.", addresses=packed)
        try:
            self._zc = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All)
            # Another hub named alike on the link gets "Home (2)", as RFC 6762 section 9 asks.
            await (await self._zc.async_register_service(self._info, allow_name_change=True))
        except (OSError, RuntimeError) as err:  # no multicast here: the hub serves on, unannounced
            _LOGGER.warning("Cannot announce the hub over mDNS (%s); clients need its address", err)
            await self.stop()
            return
        _LOGGER.info("Announced %s over mDNS (%s)", self._info.name, self._info.properties)

    async def stop(self) -> None:
        if self._zc is not None:
            with contextlib.suppress(Exception):
                await self._zc.async_unregister_all_services()
            await self._zc.async_close()
            self._zc = None
