"""Bind keys of encrypted BLE sensors: validation and storage, kept apart from everything that is shown.

An encrypted sensor (BTHome v2 with encryption, MiBeacon v4/v5) can only be read with
the 16-byte AES key it shares with its owner. A driver says an appliance needs one by
setting ``data["encrypted"] = True`` in its :class:`~qilu_hub.sdk.DiscoveredAppliance`;
such an appliance is not adopted until the household supplies the key (:func:`require_bind_key`,
the one gate every adoption path and the inbox go through).

The key is a secret. It is stored in the registry store under its own kind
(``"bind_key"``, keyed ``"<driver>:<appliance key>"``), never in the inbox entry, the
adopted record or the device, because those are listed by the API, the CLI and the
TD export. It is held in memory as :class:`BindKey`, whose ``repr`` hides it.
Unlike access tokens it cannot be hashed: the hub needs it to decrypt.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qilu_hub.storage import RegistryStore

STORE_KIND = "bind_key"
KEY_BYTES = 16
_HEX = frozenset(string.hexdigits)


class BindKeyError(ValueError):
    """A bind key that is not 32 hex digits. The message never contains the key."""


class BindKeyRequired(ValueError):
    """The appliance sends encrypted adverts and no bind key was given."""


class BindKey:
    """A 16-byte key whose text forms never show it (logs, reprs, f-strings, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if len(value) != KEY_BYTES:
            raise BindKeyError(f"a bind key is {KEY_BYTES} bytes, not {len(value)}")
        self._value = bytes(value)

    @classmethod
    def parse(cls, text: str) -> BindKey:
        """From the 32 hex digits vendors' tools print; spaces, ':' and '-' between digits are allowed."""
        if not isinstance(text, str):
            raise BindKeyError("a bind key is text: 32 hex digits")
        digits = "".join(ch for ch in text.strip() if ch not in " :-")
        if len(digits) != 2 * KEY_BYTES or not _HEX.issuperset(digits):
            # Say what is wrong in general terms only: echoing the input would put a near-secret in logs.
            raise BindKeyError(f"a bind key is {2 * KEY_BYTES} hex digits ({KEY_BYTES} bytes); "
                               f"got {len(digits)} characters" + ("" if _HEX.issuperset(digits) else
                                                                 ", not all hex digits"))
        return cls(bytes.fromhex(digits))

    def reveal(self) -> bytes:
        """The key itself, for the parser that decrypts with it, and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "BindKey(<secret>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BindKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash((BindKey, self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a bind key is not pickled")  # nor copied into a cache or a crash dump by accident


def needs_bind_key(data: Mapping[str, Any]) -> bool:
    """Whether a driver's appliance data marks it as encrypted (then it needs a key to be adopted)."""
    return data.get("encrypted") is True


def missing_bind_key(keys: BindKeys, driver: str, appliance_key: str, data: Mapping[str, Any]) -> bool:
    """The one bind-key gate: whether an appliance encrypts its adverts and no key is stored for it yet
    (then it is not adopted, and the inbox flags it ``needs_bind_key``)."""
    return needs_bind_key(data) and not keys.has(driver, appliance_key)


def require_bind_key(keys: BindKeys, driver: str, appliance_key: str, data: Mapping[str, Any], title: str) -> None:
    """Raise :class:`BindKeyRequired` where :func:`missing_bind_key` says so (adopting it would give a sensor
    with no readings and no reason why)."""
    if missing_bind_key(keys, driver, appliance_key, data):
        raise BindKeyRequired(f"{title} encrypts its adverts: adopt it with its bind key")


def record_key(driver: str, appliance_key: str) -> str:
    return f"{driver}:{appliance_key}"


class BindKeys:
    """Bind keys in the registry store, by driver and appliance key."""

    __slots__ = ("_store",)

    def __init__(self, store: RegistryStore) -> None:
        self._store = store

    def get(self, driver: str, appliance_key: str) -> BindKey | None:
        record = self._store.get(STORE_KIND, record_key(driver, appliance_key))
        if not record:
            return None
        try:
            return BindKey.parse(record["key"])
        except (KeyError, BindKeyError):
            return None  # a damaged record reads as "no key": the household is asked again

    def has(self, driver: str, appliance_key: str) -> bool:
        return self.get(driver, appliance_key) is not None

    def set(self, driver: str, appliance_key: str, key: BindKey) -> None:
        self._store.put(STORE_KIND, record_key(driver, appliance_key), {"key": key.reveal().hex()})

    def delete(self, driver: str, appliance_key: str) -> None:
        self._store.delete(STORE_KIND, record_key(driver, appliance_key))

    def __repr__(self) -> str:
        return "BindKeys(<secrets>)"


__all__ = ["KEY_BYTES", "STORE_KIND", "BindKey", "BindKeyError", "BindKeyRequired", "BindKeys", "missing_bind_key",
           "needs_bind_key", "require_bind_key"]
