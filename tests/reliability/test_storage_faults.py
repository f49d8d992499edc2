"""A full disk and a corrupted registry, through a whole hub: clear messages, memory equal to disk."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.storage import StorageError


async def test_full_disk_refuses_new_devices_clearly_and_loses_nothing(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    await hub.async_start()
    conn = hub.storage._conn
    # SQLite answers SQLITE_FULL exactly as on a full disk once the page limit is reached.
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    saved = []
    with pytest.raises(StorageError, match="change not saved: database or disk is full"):
        for i in range(5000):
            saved.append(hub.devices.async_get_or_create(source="t", name=f"Device {i} " + "x" * 200,
                                                         identifiers=[("t", str(i))]).id)
    assert len(hub.devices) == len(saved)  # the refused device is not in memory either
    with pytest.raises(StorageError):
        hub.entities.async_get_or_create(unique_id="big", capabilities=("on_off",), name="R" * 5000,
                                         device_id=saved[0])
    assert hub.entities.get_by_unique_id("big") is None
    hub.states.async_set("switch.still_works", "on")  # states live in memory: the hub keeps running
    conn.execute("PRAGMA max_page_count=1073741823")  # space freed: writes work again
    hub.devices.async_get_or_create(source="t", name="After", identifiers=[("t", "after")])
    count = len(hub.devices)
    await hub.async_stop()
    reopened = Hub(tmp_path, {}, recorder=False)
    await reopened.async_start()
    assert len(reopened.devices) == count  # memory and disk agreed
    await reopened.async_stop()


async def test_corrupt_registry_is_restored_at_hub_start_with_a_clear_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    await hub.async_start()
    device = hub.devices.async_get_or_create(source="t", name="Lamp", identifiers=[("t", "lamp")])
    await hub.async_stop()
    for _ in range(2):  # a clean start takes the backup
        again = Hub(tmp_path, {}, recorder=False)
        await again.async_start()
        await again.async_stop()
    with open(tmp_path / "registry.db", "r+b") as fh:
        fh.write(b"\x00garbage" * 4096)
    caplog.set_level(logging.ERROR)
    restored = Hub(tmp_path, {}, recorder=False)
    await restored.async_start()
    try:
        assert restored.devices.get(device.id) is not None
        message = "\n".join(r.getMessage() for r in caplog.records)
        assert "was corrupt" in message and "restored from" in message and "registry.db.bak" in message
        assert list(tmp_path.glob("registry.db.corrupt-*"))  # kept for inspection
    finally:
        await restored.async_stop()
