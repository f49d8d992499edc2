"""Long-lived access tokens: stored hashed, revocable, scoped, and optionally expiring.

A token is 32 random bytes; only its SHA-256 is stored (a fast hash is right for
high-entropy secrets: there is nothing to brute-force, unlike a password). Scopes
limit a token to reading only, and/or to some areas or entities, so a headset in
the children's room cannot unlock the front door.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .storage import RegistryStore, StorageError

_LOGGER = logging.getLogger(__name__)

TOKEN_PREFIX = "qh_"


@dataclass(frozen=True, slots=True)
class Scopes:
    read_only: bool = False
    areas: frozenset[str] | None = None  # None: every area
    entities: frozenset[str] | None = None  # None: every entity
    # May manage tokens, adopt discoveries, change registries; never together with read_only (refused at
    # creation; a stored token with both, from before that check, is read-only: see ``may_administer``).
    admin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_only": self.read_only,
            "areas": sorted(self.areas) if self.areas is not None else None,
            "entities": sorted(self.entities) if self.entities is not None else None,
            "admin": self.admin,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scopes:
        areas, entities = data.get("areas"), data.get("entities")
        return cls(
            read_only=bool(data.get("read_only", False)),
            areas=frozenset(areas) if areas is not None else None,
            entities=frozenset(entities) if entities is not None else None,
            admin=bool(data.get("admin", False)),
        )

    @property
    def may_administer(self) -> bool:
        return self.admin and not self.read_only

    @property
    def restricted(self) -> bool:
        """Limited to some areas or entities (not merely read-only)."""
        return self.areas is not None or self.entities is not None

    def can_see(self, entity_id: str, area_id: str | None) -> bool:
        if self.entities is None and self.areas is None:
            return True
        if self.entities is not None and entity_id in self.entities:
            return True
        return self.areas is not None and area_id is not None and area_id in self.areas

    def can_control(self, entity_id: str, area_id: str | None) -> bool:
        return not self.read_only and self.can_see(entity_id, area_id)


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    name: str
    scopes: Scopes
    created: float
    last_used: float | None = None
    revoked: float | None = None
    expires: float | None = None  # absolute, in seconds since the epoch; None: never
    extra: dict[str, Any] = field(default_factory=dict)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``15m`` or ``90s`` (a positive whole number and one unit)."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd])\s*", text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 15m or 90s")
    return int(match.group(1)) * _UNITS[match.group(2)]


class TokenStore:
    """Create, verify, list and revoke tokens in the registry database.

    Verdicts are cached per secret, but every :meth:`verify` first asks SQLite whether another
    connection committed since (``PRAGMA data_version``, a few microseconds): a token revoked by
    ``qilu-hub token revoke`` in another process is refused by the very next request. Listeners
    (:meth:`on_change`) hear of every revocation, here or elsewhere, so that open sessions can be ended.
    """

    # ``last_used`` is written at most this often per token: a busy client must not cost a database
    # write (fsync, SD-card wear) per request; "used in the last minute" is precise enough to spot a stale token.
    touch_interval = 60.0

    def __init__(self, store: RegistryStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        # Wall-clock time, as expiries are absolute dates; tests inject their own.
        self.clock = clock
        self._cache: dict[str, Token] = {}  # digest -> token, valid ones only (so at most one per stored token)
        self._touched: dict[str, float] = {}  # token id -> monotonic time of its last last_used write
        self._version = store.data_version()
        self._listeners: list[Callable[[], object]] = []

    def on_change(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener`` whenever tokens may have been revoked (by this store or another process)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self) -> None:
        self._cache.clear()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # one listener's bug must not stop revocation reaching the others
                _LOGGER.exception("Token change listener failed")

    def sync(self) -> bool:
        """Notice commits made by another process since the last look; True (and listeners told) if any."""
        version = self._store.data_version()
        if version == self._version:
            return False
        self._version = version
        self._changed()
        return True

    def create(self, name: str, scopes: Scopes | None = None, expires: float | None = None) -> tuple[Token, str]:
        """Create a token; the secret is returned once and never stored. ``expires``: absolute epoch seconds."""
        scopes = scopes or Scopes()
        if scopes.read_only and scopes.admin:
            raise ValueError("a token cannot be both read-only and admin (an admin changes the hub)")
        if expires is not None and not math.isfinite(expires):
            raise ValueError("expires must be a finite time")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(uuid.uuid4().hex[:12], name, scopes, time.time(), expires=expires)
        self._store.execute(
            "INSERT INTO tokens (id, name, hash, scopes, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
            (token.id, name, _hash(secret), json.dumps(token.scopes.to_dict()), token.created, expires),
        )
        return token, secret

    def expired(self, token: Token) -> bool:
        return token.expires is not None and self.clock() >= token.expires

    def verify(self, secret: str) -> Token | None:
        """The token of ``secret`` if it exists, is not revoked and has not expired; else None."""
        if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        self.sync()
        digest = _hash(secret)
        token = self._cache.get(digest)
        if token is None:
            rows = self._store.execute(
                "SELECT id, name, hash, scopes, created, last_used, revoked, expires FROM tokens WHERE hash = ?",
                (digest,),
            )
            if not rows or rows[0][6] is not None or not hmac.compare_digest(rows[0][2], digest):
                return None
            tid, name, _, scopes, created, last_used, revoked, expires = rows[0]
            token = Token(tid, name, Scopes.from_dict(json.loads(scopes)), created, last_used, revoked, expires)
            self._cache[digest] = token
        if self.expired(token):
            return None
        self._touch(token.id)
        return token

    def inactive(self, token_ids: Iterable[str]) -> set[str]:
        """Those of ``token_ids`` that are revoked, expired or gone, as the database says now."""
        wanted = set(token_ids)
        if not wanted:
            return set()
        rows = self._store.execute("SELECT id, revoked, expires FROM tokens")  # a household has a few dozen
        now = self.clock()
        active = {tid for tid, revoked, expires in rows if revoked is None and (expires is None or now < expires)}
        return wanted - active

    def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        last = self._touched.get(token_id)
        if last is not None and now - last < self.touch_interval:
            return
        self._touched[token_id] = now
        try:
            self._store.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (time.time(), token_id))
        except (sqlite3.Error, StorageError) as err:  # a full disk must not turn into a refused login
            _LOGGER.debug("Could not record the use of token %s: %s", token_id, err)

    def list(self) -> list[Token]:
        rows = self._store.execute(
            "SELECT id, name, scopes, created, last_used, revoked, expires FROM tokens ORDER BY created")
        return [Token(i, n, Scopes.from_dict(json.loads(s)), c, lu, r, e) for i, n, s, c, lu, r, e in rows]

    def revoke(self, token_id: str) -> bool:
        rows = self._store.execute("SELECT id FROM tokens WHERE id = ? AND revoked IS NULL", (token_id,))
        if not rows:
            return False
        self._store.execute("UPDATE tokens SET revoked = ? WHERE id = ?", (time.time(), token_id))
        self._changed()
        return True


# The one environment variable every client command (label, xr) reads an access token from; the second is what
# `qilu-hub xr` read before, still honoured with a deprecation note.
TOKEN_ENV = "QILU_HUB_TOKEN"
DEPRECATED_TOKEN_ENV = "QILU_TOKEN"


def token_from_environment() -> tuple[str | None, bool]:
    """The access token from ``$QILU_HUB_TOKEN`` (else the deprecated ``$QILU_TOKEN``), and whether it came from
    the deprecated name, so the caller can say so."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token, False
    token = os.environ.get(DEPRECATED_TOKEN_ENV)
    return (token, True) if token else (None, False)
