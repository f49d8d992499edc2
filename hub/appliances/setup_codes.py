"""Setup codes of appliances that are adopted by commissioning them (Matter): kept apart from what is shown.

A Matter appliance's setup code (the QR payload or the manual code on its label) opens it to whoever
holds it while its commissioning window is open, so it is a secret like a bind key: stored in the registry
store under its own kind, keyed ``"<driver>:<appliance key>"``, never in the inbox entry, the adopted
record or the device, and deleted once the appliance is commissioned. A driver marks an appliance that
needs one with ``data["setup_code"] = "<scheme>"`` (``"matter"``); the inbox then flags it
``needs_setup_code`` and adoption waits for a code (:func:`check_setup_code` reads it before it is kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qilu_hub.storage import RegistryStore

STORE_KIND = "setup_code"


class SetupCodeRequired(ValueError):
    """The appliance is adopted by commissioning it, and no setup code was given."""


def needs_setup_code(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("setup_code"), str)


def check_setup_code(data: Mapping[str, Any], code: str, title: str) -> str:
    """The code, normalised, if it is one of the appliance's scheme and may open this appliance; ValueError
    (naming the problem, never the code) otherwise."""
    if data.get("setup_code") == "matter":
        from qilu_hub.matter.codes import parse_setup_code

        parsed = parse_setup_code(code)
        discriminator = data.get("discriminator")
        if isinstance(discriminator, int) and not parsed.matches(discriminator, data.get("vendor_id"),
                                                                 data.get("product_id")):
            raise ValueError(f"this setup code opens another appliance than {title}")
        return parsed.text
    raise ValueError(f"{title} takes no setup code")


class SetupCodes:
    """Setup codes in the registry store, by driver and appliance key."""

    __slots__ = ("_store",)

    def __init__(self, store: RegistryStore) -> None:
        self._store = store

    def get(self, driver: str, appliance_key: str) -> str | None:
        record = self._store.get(STORE_KIND, f"{driver}:{appliance_key}")
        code = record.get("code") if record else None
        return code if isinstance(code, str) else None

    def set(self, driver: str, appliance_key: str, code: str) -> None:
        self._store.put(STORE_KIND, f"{driver}:{appliance_key}", {"code": code})

    def delete(self, driver: str, appliance_key: str) -> None:
        self._store.delete(STORE_KIND, f"{driver}:{appliance_key}")

    def __repr__(self) -> str:
        return "SetupCodes(<secrets>)"


__all__ = ["STORE_KIND", "SetupCodeRequired", "SetupCodes", "check_setup_code", "needs_setup_code"]
