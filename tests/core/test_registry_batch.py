"""Registry batches: one commit for many changes, all or nothing, memory equals disk, events only after commit."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qilu_hub.bus import EventBus
from qilu_hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry, registry_batch
from qilu_hub.storage import RegistryStore, StorageError

_RUNS = itertools.count()


class _Crash(Exception):
    """The mapping code failing half-way through a node."""


def _open(path: Path) -> tuple[RegistryStore, EventBus, AreaRegistry, DeviceRegistry, EntityRegistry]:
    store, bus = RegistryStore(path), EventBus()
    areas, devices = AreaRegistry(store, bus), DeviceRegistry(store, bus)
    return store, bus, areas, devices, EntityRegistry(store, bus, devices, areas)


def _memory(areas: AreaRegistry, devices: DeviceRegistry, entities: EntityRegistry) -> dict[str, Any]:
    return {"area": {a.id: a.to_dict() for a in areas.all()},
            "device": {d.id: d.to_dict() for d in devices.all()},
            "entity": {e.entity_id: e.to_dict() for e in entities.all()}}


def _disk(store: RegistryStore) -> dict[str, Any]:
    return {kind: store.load(kind) for kind in ("area", "device", "entity")}


def _bridge(devices: DeviceRegistry, entities: EntityRegistry, areas: AreaRegistry, count: int) -> None:
    """What mapping a bridge does: its own device, then per endpoint a bridged device with an entity."""
    root = devices.async_get_or_create(source="matter", name="Bridge", identifiers=[("matter", "bridge")])
    areas.async_get_or_create("Hall")
    for n in range(count):
        device = devices.async_get_or_create(source="matter", name=f"Lamp {n}", identifiers=[("matter", f"b:{n}")],
                                             connections=[("serial", f"SN{n}")], via_device_id=root.id)
        entities.async_get_or_create(unique_id=f"matter:b:{n}", capabilities=("on_off",), name=f"Lamp {n}",
                                     device_id=device.id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(min_value=1, max_value=12), fail_after=st.one_of(st.none(), st.integers(0, 30)),
       how=st.sampled_from(["disk", "code"]))
def test_a_batch_is_whole_or_nothing_and_memory_equals_disk(tmp_path: Path, count: int, fail_after: int | None,
                                                            how: str) -> None:
    path = tmp_path / f"r-{next(_RUNS)}.db"  # hypothesis reuses tmp_path across its examples
    store, bus, areas, devices, entities = _open(path)
    try:
        devices.async_get_or_create(source="test", name="Old", identifiers=[("test", "old")])  # outside any batch
        before = _disk(store)
        heard: list[Any] = []
        bus.listen("*", heard.append)
        failed = False
        if fail_after is not None and how == "disk":
            # A write refused by SQLite itself (as a full disk refuses it) once the table holds this many records.
            store.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON records WHEN "
                          f"(SELECT count(*) FROM records) >= {len(before['device']) + fail_after} "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        try:
            with registry_batch(areas, devices, entities):
                _bridge(devices, entities, areas, count)
                if fail_after is not None and how == "code" and fail_after <= 2 * count:
                    raise _Crash
        except (StorageError, _Crash):
            failed = True
        if failed:
            assert _disk(store) == before  # nothing of the batch was written
            assert heard == []  # and nobody heard of what was undone
        else:
            assert len(store.load("entity")) == count
            assert len(heard) == 2 * count + 2  # every change announced once, after the commit
        assert _memory(areas, devices, entities) == _disk(store)
        store.execute("DROP TRIGGER IF EXISTS refuse")
        reopened = _open(path)  # what a restart would load is what memory held
        assert _memory(*reopened[2:]) == _memory(areas, devices, entities)
        reopened[0].close()
    finally:
        store.close()


def test_nothing_of_a_batch_is_visible_to_others_before_it_ends(tmp_path: Path) -> None:
    store, bus, areas, devices, entities = _open(tmp_path / "r.db")
    heard: list[Any] = []
    bus.listen("*", heard.append)
    other = sqlite3.connect(tmp_path / "r.db")
    try:
        with registry_batch(areas, devices, entities):
            _bridge(devices, entities, areas, 5)
            with registry_batch(areas, devices, entities):  # a batch inside joins the outer one
                entities.async_get_or_create(unique_id="extra", capabilities=("on_off",), name="Extra")
            assert other.execute("SELECT count(*) FROM records").fetchone()[0] == 0
            assert heard == []
        assert other.execute("SELECT count(*) FROM records WHERE kind = 'entity'").fetchone()[0] == 6
        assert len(heard) == 13
    finally:
        other.close()
        store.close()


def test_a_failed_merge_inside_a_batch_is_undone_with_it(tmp_path: Path) -> None:
    """A merge (a nested transaction, here a savepoint) followed by a failure: both undone, the merged-away
    device back in memory as on disk."""
    store, _bus, areas, devices, entities = _open(tmp_path / "r.db")
    a = devices.async_get_or_create(source="x", name="A", identifiers=[("x", "a")])
    b = devices.async_get_or_create(source="y", name="B", identifiers=[("y", "b")])
    with pytest.raises(_Crash), registry_batch(areas, devices, entities):
        devices.async_get_or_create(source="z", name="AB", identifiers=[("x", "a"), ("y", "b")])
        assert devices.get(b.id) is None
        raise _Crash
    assert {d.id for d in devices.all()} == {a.id, b.id}
    assert _memory(areas, devices, entities) == _disk(store)
    store.close()
