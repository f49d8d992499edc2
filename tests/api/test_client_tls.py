"""aiohttp's client TLS contexts read the CA store on first use, and still verify as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs in a fresh interpreter: aiohttp must not have been imported before qilu_hub.api.
CHILD = r"""
import asyncio, ssl, sys
import qilu_hub.api
import aiohttp
import aiohttp.connector as connector
from aiohttp import web
from qilu_hub.api.client_tls import DeferredCaContext

verified = connector._SSL_CONTEXT_VERIFIED
assert isinstance(verified, DeferredCaContext) and verified._ca_pending, "CA store read at import"
assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname

async def main(cert, key):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="hello"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://127.0.0.1:{port}/") as resp:
                print("OK", await resp.text())
    except aiohttp.ClientConnectorCertificateError:
        print("REFUSED")
    finally:
        await runner.cleanup()
    assert not verified._ca_pending

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def _run(cert: Path, key: Path, ca_file: Path) -> str:
    import os

    env = {**os.environ, "SSL_CERT_FILE": str(ca_file), "SSL_CERT_DIR": str(ca_file.parent / "none")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(cert), str(key)], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_ca_store_is_read_at_the_first_handshake_and_verification_is_unchanged(tmp_path: Path) -> None:
    cert, key = _cert(tmp_path, "hub")
    other, _ = _cert(tmp_path, "stranger")
    assert _run(cert, key, cert) == "OK hello"  # the store (read late) trusts the server's certificate
    assert _run(cert, key, other) == "REFUSED"  # and a store that does not trust it still refuses


def test_the_api_starts_without_the_packages_only_some_hubs_use() -> None:
    """Memory on a small gateway: importing the API loads neither TLS certificate tooling, nor the template
    engine, nor QR drawing, nor the scene schema validator, nor the scene package and its YAML parser (the XR
    API loads them with the first scene it resolves), nor msgpack (the stream's first message), nor the OpenAPI
    document's module; each loads when first used (their own tests)."""
    heavy = ("cryptography", "jinja2", "segno", "jsonschema", "qilu_hub.scenes", "yaml", "msgpack",
             "qilu_hub.api.openapi")
    code = f"import sys, qilu_hub.api; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
