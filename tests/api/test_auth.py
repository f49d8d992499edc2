"""Client addresses behind a reverse proxy: X-Forwarded-For is believed from hub.trusted_proxies only."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from qilu_hub.api import LoginLimiter
from qilu_hub.api.auth import ProxyTrust
from qilu_hub.config import ConfigError

from .conftest import bearer, start_env


def test_header_is_ignored_from_untrusted_peers() -> None:
    assert ProxyTrust().client_address("127.0.0.1", ["10.0.0.5"]) == "127.0.0.1"
    assert ProxyTrust(["10.9.0.0/16"]).client_address("127.0.0.1", ["10.0.0.5"]) == "127.0.0.1"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    trust = ProxyTrust(["127.0.0.1", "172.16.0.0/12"])
    assert trust.client_address("127.0.0.1", ["10.0.0.5"]) == "10.0.0.5"
    # The client wrote "1.2.3.4" itself; our proxies appended the rest.
    assert trust.client_address("127.0.0.1", ["1.2.3.4, 10.0.0.5, 172.16.3.4"]) == "10.0.0.5"
    assert trust.client_address("127.0.0.1", ["1.2.3.4", "10.0.0.5"]) == "10.0.0.5"  # repeated headers
    assert trust.client_address("127.0.0.1", ["2001:db8::1"]) == "2001:db8::1"
    assert trust.client_address("::ffff:127.0.0.1", ["10.0.0.5"]) == "10.0.0.5"


def test_garbage_stops_at_the_last_good_hop() -> None:
    trust = ProxyTrust(["127.0.0.1", "172.16.0.0/12"])
    assert trust.client_address("127.0.0.1", ["bogus, 172.16.3.4"]) == "172.16.3.4"
    assert trust.client_address("127.0.0.1", ["not an address"]) == "127.0.0.1"
    assert trust.client_address("127.0.0.1", []) == "127.0.0.1"
    assert trust.client_address("127.0.0.1", ["172.16.0.9"]) == "172.16.0.9"  # only proxies: the farthest


def test_forwarded_https_only_from_a_proxy() -> None:
    trust = ProxyTrust(["127.0.0.1"])
    assert trust.forwarded_https("127.0.0.1", "https")
    assert not trust.forwarded_https("10.0.0.1", "https")
    assert not trust.forwarded_https("127.0.0.1", "http")
    assert not trust.forwarded_https("127.0.0.1", None)


def test_bad_cidr_is_refused() -> None:
    with pytest.raises(ValueError):
        ProxyTrust(["10.0.0.0/33"])


async def failures_from(url: str, session: aiohttp.ClientSession, client: str, n: int) -> None:
    for _ in range(n):
        async with session.get(url + "/api/", headers={**bearer("qh_guess"), "X-Forwarded-For": client}) as resp:
            assert resp.status == 401


async def status_for(url: str, session: aiohttp.ClientSession, token: str, client: str) -> int:
    async with session.get(url + "/api/", headers={**bearer(token), "X-Forwarded-For": client}) as resp:
        return resp.status


async def test_limiter_counts_per_client_behind_a_trusted_proxy(tmp_path: Path,
                                                                session: aiohttp.ClientSession) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  trusted_proxies: ['127.0.0.1/32']\n")
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=3, window=60))
    try:
        await failures_from(env.url, session, "10.0.0.5", 3)
        assert await status_for(env.url, session, env.admin, "10.0.0.5") == 429
        assert await status_for(env.url, session, env.admin, "10.0.0.6") == 200  # another household member
        # The guesser cannot escape by writing its own header: the proxy's entry (rightmost) counts.
        assert await status_for(env.url, session, env.admin, "10.0.0.77, 10.0.0.5") == 429
        async with session.ws_connect(env.ws_url, headers={"X-Forwarded-For": "10.0.0.5"}) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": env.admin})
            assert "Too many" in (await ws.receive_json())["message"]
        async with session.ws_connect(env.ws_url, headers={"X-Forwarded-For": "10.0.0.6"}) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": env.admin})
            assert (await ws.receive_json())["type"] == "auth_ok"
        async with session.post(env.url + "/login", data={"token": env.admin}, allow_redirects=False,
                                headers={"X-Forwarded-For": "10.0.0.6", "X-Forwarded-Proto": "https",
                                         "Origin": env.url}) as resp:
            assert resp.cookies["qilu_token"]["secure"]  # the proxy speaks HTTPS to the browser
    finally:
        await env.hub.async_stop()


async def test_header_is_ignored_without_trusted_proxies(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=3, window=60))
    try:
        await failures_from(env.url, session, "10.0.0.5", 3)
        # A client cannot dodge the limit by naming another address: the peer is what counts.
        assert await status_for(env.url, session, env.admin, "10.0.0.6") == 429
        async with session.get(env.url + "/", params={"token": "qh_x"}, allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https"}) as resp:
            assert resp.status == 429
    finally:
        await env.hub.async_stop()


async def test_forwarded_proto_from_a_stranger_does_not_change_the_cookie(tmp_path: Path,
                                                                         session: aiohttp.ClientSession) -> None:
    env = await start_env(tmp_path)
    try:
        async with session.post(env.url + "/login", data={"token": env.admin}, allow_redirects=False,
                                headers={"X-Forwarded-Proto": "https", "Origin": env.url}) as resp:
            assert not resp.cookies["qilu_token"]["secure"]
    finally:
        await env.hub.async_stop()


async def test_bad_trusted_proxies_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("hub:\n  trusted_proxies: ['10.0.0.0/40']\n")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        await start_env(tmp_path)
