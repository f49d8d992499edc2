"""How a connection reaches the BLE scanner of its hub: the lookup the running lifecycle offers.

Drivers connect to BLE appliances with the :class:`BLEDevice` the scanner already heard (connecting
by address alone makes BlueZ scan again). The lifecycle registers its lookup here when it starts;
the SDK's ``DeviceContext.async_connect_ble`` asks for it, so no part looks another up by name.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qilu_hub.core import Hub

BleLookup = Callable[[str], Any]  # address -> the bleak BLEDevice heard there, or None

_LOOKUPS: weakref.WeakKeyDictionary[Hub, BleLookup] = weakref.WeakKeyDictionary()


def offer_ble_lookup(hub: Hub, lookup: BleLookup | None) -> None:
    """The lifecycle of ``hub`` offers (or, with None, withdraws) its scanner's lookup."""
    if lookup is None:
        _LOOKUPS.pop(hub, None)
    else:
        _LOOKUPS[hub] = lookup


def ble_device_lookup(hub: Hub) -> BleLookup | None:
    """The scanner's lookup of ``hub``, or None when it runs no appliance lifecycle (then connect by address
    and let bleak scan)."""
    return _LOOKUPS.get(hub)


__all__ = ["BleLookup", "ble_device_lookup", "offer_ble_lookup"]
