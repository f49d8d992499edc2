"""Long-lived access tokens: stored hashed, revocable, and scoped.

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
import secrets
import sqlite3
import time
import uuid
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
    admin: bool = False  # may manage tokens, adopt discoveries, change registries

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
    extra: dict[str, Any] = field(default_factory=dict)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    # Cached verdicts are re-read from the database after this many seconds, so that a token revoked
    # by another process (``qilu-hub token revoke`` while the hub runs) stops working soon after.
    recheck_after = 5.0
    # ``last_used`` is written at most this often per token: a busy client must not cost a database
    # write (fsync, SD-card wear) per request; "used in the last minute" is precise enough to spot a stale token.
    touch_interval = 60.0

    def __init__(self, store: RegistryStore) -> None:
        self._store = store
        self._cache: dict[str, tuple[Token, float]] = {}
        self._touched: dict[str, float] = {}  # token id -> monotonic time of its last last_used write

    def create(self, name: str, scopes: Scopes | None = None) -> tuple[Token, str]:
        """Create a token; the secret is returned once and never stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(uuid.uuid4().hex[:12], name, scopes or Scopes(), time.time())
        self._store.execute(
            "INSERT INTO tokens (id, name, hash, scopes, created) VALUES (?, ?, ?, ?, ?)",
            (token.id, name, _hash(secret), json.dumps(token.scopes.to_dict()), token.created),
        )
        return token, secret

    def verify(self, secret: str) -> Token | None:
        if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = _hash(secret)
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[1] < self.recheck_after:
            self._touch(cached[0].id)
            return cached[0]
        self._cache.pop(digest, None)
        rows = self._store.execute(
            "SELECT id, name, hash, scopes, created, last_used, revoked FROM tokens WHERE hash = ?", (digest,)
        )
        if not rows or rows[0][6] is not None or not hmac.compare_digest(rows[0][2], digest):
            return None
        tid, name, _, scopes, created, last_used, revoked = rows[0]
        token = Token(tid, name, Scopes.from_dict(json.loads(scopes)), created, last_used, revoked)
        self._cache[digest] = (token, time.monotonic())
        self._touch(tid)
        return token

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
        rows = self._store.execute("SELECT id, name, scopes, created, last_used, revoked FROM tokens ORDER BY created")
        return [Token(i, n, Scopes.from_dict(json.loads(s)), c, lu, r) for i, n, s, c, lu, r in rows]

    def revoke(self, token_id: str) -> bool:
        rows = self._store.execute("SELECT id FROM tokens WHERE id = ? AND revoked IS NULL", (token_id,))
        if not rows:
            return False
        self._store.execute("UPDATE tokens SET revoked = ? WHERE id = ?", (time.time(), token_id))
        self._cache.clear()
        return True
