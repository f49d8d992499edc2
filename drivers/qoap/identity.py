"""The hub side of the QOAP identity proof (docs/appliance-profile.md §8): challenge, check the signature.

The hub sends a fresh random challenge to ``POST /qoap/identity``; the appliance answers with its
Ed25519 public key and a signature over :func:`qilu_hub.drivers.qoap.profile.identity_message`, which names
the address the request reached it on. The hub checks the signature against the address it is
connected to (the socket's peer), so a signature relayed from the real appliance elsewhere does not
verify, and, when a key was pinned at adoption, that the key is that one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import profile

PUBLIC_KEY_BYTES = 32


class IdentityError(Exception):
    """The appliance did not prove the identity asked for; the message says how it failed."""


@dataclass(frozen=True, slots=True)
class Proof:
    key: str  # the appliance's public key, base64 of the 32 raw bytes (what the hub pins)
    address: str  # the endpoint the signature is bound to


def base_url(host: str, port: int) -> str:
    return f"http://{profile.format_address(host, port)}"


def _peer(resp: aiohttp.ClientResponse) -> str | None:
    """The address this response really came from (the socket's peer), as the appliance writes its own."""
    connection = resp.connection
    transport = connection.transport if connection is not None else None
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return profile.format_address(str(peer[0]), int(peer[1]))
    return None


async def async_challenge(session: aiohttp.ClientSession, host: str, port: int, device_id: str,
                          pinned: str | None = None) -> Proof:
    """Challenge the appliance at ``host:port`` to prove it is ``device_id`` (holding ``pinned``, if given).

    Raises :class:`IdentityError` when it does not; network errors propagate (aiohttp's, OSError).
    """
    challenge = os.urandom(profile.CHALLENGE_BYTES)
    async with session.post(base_url(host, port) + profile.IDENTITY_PATH,
                            json={"challenge": profile.b64encode(challenge)}) as resp:
        peer = _peer(resp) or profile.format_address(host, port)
        if resp.status == 404:
            raise IdentityError("the appliance has no identity endpoint (profile 1.0 has none)")
        if resp.status != 200:
            raise IdentityError(f"{profile.IDENTITY_PATH} answered HTTP {resp.status}")
        body = await resp.json(content_type=None)
    if not isinstance(body, dict) or body.get("alg") != profile.IDENTITY_ALG:
        raise IdentityError(f"the identity answer is not an {profile.IDENTITY_ALG} proof")
    try:
        raw_key = profile.b64decode(body.get("key"))
        signature = profile.b64decode(body.get("signature"))
    except ValueError as err:
        raise IdentityError(f"the identity answer is malformed: {err}") from None
    if len(raw_key) != PUBLIC_KEY_BYTES:
        raise IdentityError(f"the public key has {len(raw_key)} bytes, not {PUBLIC_KEY_BYTES}")
    key = profile.b64encode(raw_key)
    if pinned is not None and key != pinned:
        raise IdentityError("the appliance answers with another key than the one pinned at adoption")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature,
                                                           profile.identity_message(device_id, peer, challenge))
    except InvalidSignature:
        raise IdentityError(f"the signature does not verify for {device_id} at {peer}") from None
    return Proof(key, peer)
