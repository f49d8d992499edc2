"""Active BLE connections for drivers: bleak-retry-connector behind a cap on simultaneous connects.

BLE controllers handle few connection attempts at once (often 1-3) and fail
unhelpfully beyond that, so every driver connects through :func:`async_connect`,
which waits for a free slot first.

bleak-retry-connector (with bluetooth-adapters and what they import: ~4 MiB) loads with the first connection:
every hub with BLE discovery sets the cap at start, and most never connect to a BLE appliance.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak_retry_connector import BleakClientWithServiceCache

DEFAULT_MAX_CONNECTIONS = 3

_slots: asyncio.Semaphore | None = None
_max_connections = DEFAULT_MAX_CONNECTIONS


def set_max_connections(value: int) -> None:
    """Set the cap (from ``discovery.ble.max_connections``); takes effect for attempts not yet waiting."""
    global _slots, _max_connections
    _max_connections = max(1, int(value))
    _slots = None


def _semaphore() -> asyncio.Semaphore:
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(_max_connections)
    return _slots


def connecting() -> int:
    """How many connection attempts hold a slot now."""
    return _max_connections - _semaphore()._value if _slots is not None else 0


async def async_connect(ble_device: BLEDevice, name: str | None = None, *, max_attempts: int = 3,
                        **kwargs: Any) -> BleakClientWithServiceCache:
    """Connect with retries; at most ``max_connections`` attempts run at once.

    Pass the :class:`BLEDevice` from discovery (``ApplianceLifecycle.ble_device(address)``):
    connecting by address alone makes BlueZ scan again first.
    """
    from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

    async with _semaphore():
        return await establish_connection(
            BleakClientWithServiceCache, ble_device, name or ble_device.address, max_attempts=max_attempts, **kwargs,
        )
