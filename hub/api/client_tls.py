"""aiohttp without its client TLS set-up at import: the CA store is read the first time a client uses HTTPS.

aiohttp builds two default client TLS contexts when it is imported (``aiohttp.connector``), and each reads
the system's CA bundle: about 2 MiB of the hub's resident memory, although the hub's server never uses them
and most hubs never open an HTTPS connection. :func:`import_aiohttp` imports aiohttp with the bundle not
read, then gives aiohttp contexts configured as its own but that read the bundle on their first handshake.
Verification is unchanged: same protocol, options, hostname check and CA store, read later.

If aiohttp's internals are not as expected (another version), aiohttp is left exactly as it made itself.
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()


class DeferredCaContext(ssl.SSLContext):
    """An SSLContext that loads the default CA store just before its first handshake."""

    _ca_pending = True
    _purpose: Any = ssl.Purpose.SERVER_AUTH

    def _load_ca(self) -> None:
        with _LOCK:
            if self._ca_pending:
                self._ca_pending = False
                if self.verify_mode == ssl.CERT_NONE:
                    ssl.SSLContext.set_default_verify_paths(self)  # as aiohttp's unverified context does
                else:
                    ssl.SSLContext.load_default_certs(self, self._purpose)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:  # asyncio's TLS uses this
        if self._ca_pending:
            self._load_ca()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if self._ca_pending:
            self._load_ca()
        return super().wrap_socket(*args, **kwargs)


@contextlib.contextmanager
def _no_ca_reading() -> Iterator[None]:
    """While aiohttp is imported: contexts are made without reading the CA bundle."""
    real_paths, real_default = ssl.SSLContext.set_default_verify_paths, ssl.SSLContext.load_default_certs
    real_create = ssl.create_default_context

    def create(purpose: Any = ssl.Purpose.SERVER_AUTH, **kwargs: Any) -> ssl.SSLContext:
        if kwargs:  # a caller with its own CA file: not aiohttp's default, make it as asked
            return real_create(purpose, **kwargs)
        server_auth = purpose == ssl.Purpose.SERVER_AUTH
        ctx = DeferredCaContext(ssl.PROTOCOL_TLS_CLIENT if server_auth else ssl.PROTOCOL_TLS_SERVER)
        ctx._purpose = purpose
        return ctx

    ssl.create_default_context = create
    ssl.SSLContext.set_default_verify_paths = lambda self: None  # type: ignore[method-assign]
    ssl.SSLContext.load_default_certs = lambda self, purpose=ssl.Purpose.SERVER_AUTH: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        ssl.create_default_context = real_create
        ssl.SSLContext.set_default_verify_paths = real_paths  # type: ignore[method-assign]
        ssl.SSLContext.load_default_certs = real_default  # type: ignore[method-assign]


def import_aiohttp() -> None:
    """Import aiohttp (once per process) with its default client contexts reading the CA store on first use."""
    if "aiohttp.connector" in sys.modules:
        return
    with _no_ca_reading():
        import aiohttp.connector as connector

        contexts = [getattr(connector, name, None) for name in ("_SSL_CONTEXT_VERIFIED", "_SSL_CONTEXT_UNVERIFIED")]
    if not all(isinstance(ctx, ssl.SSLContext) for ctx in contexts):
        return
    # The unverified context was made as a plain SSLContext (aiohttp calls the constructor): make it again as
    # a deferred one, configured the same way.
    unverified = contexts[1]
    assert unverified is not None
    if not isinstance(unverified, DeferredCaContext):
        fresh = DeferredCaContext(ssl.PROTOCOL_TLS_CLIENT)
        fresh.options = unverified.options
        fresh.check_hostname = unverified.check_hostname
        fresh.verify_mode = unverified.verify_mode
        fresh.set_alpn_protocols(("http/1.1",))
        connector._SSL_CONTEXT_UNVERIFIED = fresh
