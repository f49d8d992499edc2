"""HTTPS with the hub's own CA (``hub.tls: auto``): the served context, its scheduled renewal, the CA download.

``GET /api/tls/ca.crt`` is public: a phone or headset must fetch the CA before it can trust anything the hub
serves. It answers DER as ``application/x-x509-ca-cert`` (the type Android's and the Quest's browsers hand to
the certificate installer), or PEM with ``?format=pem``. ``GET /api/tls`` (signed in) describes the CA and
the server certificate, fingerprints included, so a person can compare what a device shows with the hub.

The server certificate is checked every :data:`CHECK_INTERVAL` (on the event loop's clock, so a wall-clock
step neither skips nor forces a check) and re-issued by :meth:`qilu_hub.tls.TlsFiles.refresh` when due; the new
one is loaded into the same SSL context, so new connections get it and open ones carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from .keys import API_KEY

if TYPE_CHECKING:
    from ..tls import HubNames
# ..tls (and with it the cryptography package, ~10 MiB resident) is imported when the hub makes or serves its
# own certificate (hub.tls: auto), not whenever the API starts.

_LOGGER = logging.getLogger(__name__)

CHECK_INTERVAL = 6 * 3600.0
CA_PATH = "/api/tls/ca.crt"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HubTls:
    """The API's HTTPS: files, the served context and the renewal task. ``clock`` and ``names`` are injectable."""

    def __init__(self, config_dir: Path, *, clock: Callable[[], dt.datetime] = utc_now,
                 names: Callable[[], HubNames] | None = None) -> None:
        from ..tls import TlsFiles, lan_names

        self.files = TlsFiles(config_dir)
        self.clock = clock
        self.names = names or lan_names
        self.context: ssl.SSLContext | None = None
        self._loaded: bytes = b""  # the served certificate, to notice one `qilu-hub tls rotate` wrote
        self._task: asyncio.Task[None] | None = None

    def start_context(self) -> ssl.SSLContext:
        """Create the CA on first start, re-issue the server certificate if due; raises :class:`TlsError`."""
        self.files.refresh(self.names(), self.clock())
        self.context = self.files.server_context()
        self._loaded = self.files.cert_path.read_bytes()
        return self.context

    def check(self) -> str | None:
        """One scheduled check: re-issue and reload when due. Never raises: serving goes on with what it has."""
        from ..tls import TlsError

        try:
            reason = self.files.refresh(self.names(), self.clock(), create_ca=False)
            current = self.files.cert_path.read_bytes()
            if current != self._loaded and self.context is not None:
                self.files.load_into(self.context)
                self._loaded = current
                reason = reason or "a new certificate on disk"
        except (TlsError, OSError) as err:
            _LOGGER.error("TLS renewal check failed; the hub keeps serving its current certificate: %s", err)
            return None
        return reason

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tls-renewal")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            self.check()


async def get_ca(request: web.Request) -> web.Response:
    tls = request.app[API_KEY].tls
    if tls is None:
        return web.json_response({"message": "The hub serves no certificate of its own (hub.tls is not auto)"},
                                 status=404)
    if request.query.get("format") == "pem":
        return web.Response(body=tls.files.ca_pem(), content_type="application/x-pem-file",
                            headers={"Content-Disposition": 'attachment; filename="qilu-hub-ca.pem"'})
    return web.Response(body=tls.files.ca_der(), content_type="application/x-x509-ca-cert",
                        headers={"Content-Disposition": 'attachment; filename="qilu-hub-ca.crt"'})


async def get_info(request: web.Request) -> web.Response:
    tls = request.app[API_KEY].tls
    if tls is None:
        return web.json_response({"enabled": False})
    return web.json_response({"enabled": True, "ca_url": CA_PATH, **tls.files.describe()})


def add_routes(app: web.Application) -> None:
    app.router.add_get(CA_PATH, get_ca)
    app.router.add_get("/api/tls", get_info)
