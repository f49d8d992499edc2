"""HTTPS with the hub's own CA, as clients see it: aiohttp and `openssl s_client` trusting only the CA file,
Chromium reaching a secure context on a LAN name, the CA download, renewal while serving, and a corrupt CA key."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.api.tls import HubTls
from qilu_hub.config import ConfigError, load_config
from qilu_hub.tls import HubNames, spki_sha256

from .test_dashboard import ARGS, CHROMIUM

NAME = "qilutest"  # the hub's host name here; Chromium maps qilutest.local to loopback


class Clock:
    def __init__(self) -> None:
        # Starts where the clients' clocks are (they verify validity on the machine's clock, whatever it reads);
        # only the hub's renewal check is moved forward.
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def _start(config_dir: Path, clock: Clock) -> tuple[Hub, ApiServer]:
    (config_dir / "configuration.yaml").write_text("hub:\n  tls: auto\n")
    hub = Hub(config_dir, load_config(config_dir))
    api = ApiServer("127.0.0.1", 0)
    api.tls = HubTls(config_dir, clock=clock, names=lambda: HubNames(NAME))
    hub.add_component(api)
    await hub.async_start()
    return hub, api


@pytest.fixture
async def hub_tls(tmp_path: Path) -> AsyncIterator[tuple[Hub, ApiServer, Clock]]:
    clock = Clock()
    hub, api = await _start(tmp_path, clock)
    yield hub, api, clock
    await hub.async_stop()


def _client_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))  # the CA file and nothing else from the system


async def _served_certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return x509.load_der_x509_certificate(der)


async def test_https_verifies_with_only_the_ca_and_the_ca_downloads_for_installers(
        hub_tls: tuple[Hub, ApiServer, Clock], tmp_path: Path) -> None:
    hub, api, _ = hub_tls
    assert api.url.startswith("https://")
    # The download a phone makes before it trusts anything: certificate errors must not stop it.
    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/api/tls/ca.crt", ssl=False) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/x-x509-ca-cert"
            ca = x509.load_der_x509_certificate(await resp.read())
        async with session.get(api.url + "/api/tls/ca.crt?format=pem", ssl=False) as resp:
            assert resp.content_type == "application/x-pem-file"
            ca_file = tmp_path / "downloaded-ca.pem"
            ca_file.write_bytes(await resp.read())
    assert x509.load_pem_x509_certificate(ca_file.read_bytes()) == ca
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/api/health", ssl=_client_context(ca_file)) as resp:
            assert resp.status == 200
        async with session.get(api.url + "/api/tls", ssl=_client_context(ca_file),
                               headers={"Authorization": f"Bearer {admin}"}) as resp:
            info = await resp.json()
            assert info["enabled"] and f"{NAME}.local" in info["server_names"]
    # OpenSSL's client, verifying the chain and the address with the downloaded CA only.
    result = await asyncio.to_thread(
        subprocess.run, ["openssl", "s_client", "-connect", f"127.0.0.1:{api.port}", "-CAfile", str(ca_file),
                         "-verify_ip", "127.0.0.1", "-verify_return_error", "-brief"],
        input="", capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stderr


async def test_a_due_certificate_is_renewed_and_served_without_a_restart(
        hub_tls: tuple[Hub, ApiServer, Clock]) -> None:
    _, api, clock = hub_tls
    assert api.tls is not None
    first = await _served_certificate(api.port or 0, _unverified())
    assert api.tls.check() is None  # nothing due
    clock.now += dt.timedelta(days=380)
    assert "expires" in (api.tls.check() or "")
    second = await _served_certificate(api.port or 0, _unverified())
    assert second.serial_number != first.serial_number
    assert second.not_valid_after_utc > clock.now + dt.timedelta(days=390)
    assert second.issuer == first.issuer
    # `qilu-hub tls rotate` beside the running hub: the next check serves what it wrote
    api.tls.files.rotate(HubNames(NAME), clock.now)
    assert api.tls.check() == "a new certificate on disk"
    third = await _served_certificate(api.port or 0, _unverified())
    assert third == api.tls.files.server_certificate() and third.serial_number != second.serial_number


def _unverified() -> ssl.SSLContext:
    """Reads which certificate is served: the moved clock makes the new one not yet valid for a verifier."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_a_corrupt_ca_key_stops_the_start_with_the_file_named_and_keeps_it(tmp_path: Path) -> None:
    clock = Clock()
    hub, _ = await _start(tmp_path, clock)
    await hub.async_stop()
    key = tmp_path / "tls" / "ca.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\ntruncated\n")
    with pytest.raises(ConfigError, match=r"hub\.tls.*ca\.key.*rotate --ca"):
        await _start(tmp_path, clock)
    assert key.read_text() == "-----BEGIN PRIVATE KEY-----\ntruncated\n"


async def test_chromium_trusting_the_ca_gets_a_secure_context_on_the_lan_name(
        hub_tls: tuple[Hub, ApiServer, Clock]) -> None:
    """qilutest.local over plain HTTP would not be a secure context (only loopback is); over HTTPS with the CA
    trusted it is. No certutil here for an NSS store, so the CA is trusted through Chromium's SPKI list (any
    certificate of the served chain may match: the CA's key, not the leaf's, is what the household trusts)."""
    from playwright.async_api import Error, async_playwright

    _, api, _ = hub_tls
    assert api.tls is not None
    ca = api.tls.files.ca_certificate()
    spki = base64.b64encode(spki_sha256(ca)).decode()
    url = f"https://{NAME}.local:{api.port}/"
    resolve = f"--host-resolver-rules=MAP {NAME}.local 127.0.0.1"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, resolve])
        try:
            page = await browser.new_page()
            with pytest.raises(Error, match="ERR_CERT"):  # untrusted: the browser refuses the page
                await page.goto(url)
        finally:
            await browser.close()
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=[*ARGS, resolve, f"--ignore-certificate-errors-spki-list={spki}"])
        try:
            page = await browser.new_page()
            await page.goto(url)
            assert await page.evaluate("window.isSecureContext") is True
            assert await page.evaluate("location.protocol") == "https:"
        finally:
            await browser.close()


async def test_the_hub_announces_https_and_its_ca_over_mdns(tmp_path: Path) -> None:
    """On loopback only (a test must not multicast on the machine's network): the record a phone browses."""
    import uuid

    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from qilu_hub.api.advert import SERVICE_TYPE, HubAdvert

    name = f"qilutest-{uuid.uuid4().hex[:8]}"
    (tmp_path / "configuration.yaml").write_text(f"hub:\n  name: {name}\n  tls: auto\n")
    hub = Hub(tmp_path, load_config(tmp_path))
    api = ApiServer("127.0.0.1", 0)
    api.tls = HubTls(tmp_path, names=lambda: HubNames(NAME))
    api.advert = HubAdvert(["127.0.0.1"])
    hub.add_component(api)
    await hub.async_start()
    browser = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}")
        assert await info.async_request(browser.zeroconf, 5000)
        assert info.port == api.port and info.parsed_addresses() == ["127.0.0.1"]
        txt = info.decoded_properties
        assert txt["scheme"] == "https" and txt["ca"] == "/api/tls/ca.crt"
        assert api.tls is not None
        ca = api.tls.files.ca_certificate()
        assert txt["ca_sha256"] == ca.fingerprint(ca.signature_hash_algorithm).hex()  # type: ignore[arg-type]
    finally:
        await browser.async_close()
        await hub.async_stop()
