"""The household's registry edits: any input is applied whole or refused whole, and memory always equals disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qilu_hub.bus import EventBus
from qilu_hub.capabilities import CommandError
from qilu_hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry
from qilu_hub.registry_edit import RegistryEditor
from qilu_hub.storage import RegistryStore

VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=120), st.sampled_from(
    ["kitchen", "hall", "user", "mdi:sofa", "Kitchen", "", " ", "x" * 101, "bad\x00name"]),
    st.lists(st.text(max_size=3), max_size=2))
FIELDS = st.dictionaries(st.sampled_from(["name", "name_by_user", "area_id", "disabled_by", "icon", "floor_id",
                                          "aliases", "labels", "colour"]), VALUES, max_size=4)


def _setup(path: Path) -> tuple[RegistryStore, RegistryEditor, str, str]:
    store = RegistryStore(path)
    bus = EventBus()
    areas, devices = AreaRegistry(store, bus), DeviceRegistry(store, bus)
    entities = EntityRegistry(store, bus, devices, areas)
    areas.async_get_or_create("Kitchen")
    areas.async_get_or_create("Hall")
    device = devices.async_get_or_create(source="test", name="Lamp", identifiers=[("test", "1")], area_id="kitchen")
    entity = entities.async_get_or_create(unique_id="lamp", capabilities=("on_off", "level"), name="Lamp",
                                          device_id=device.id)
    return store, RegistryEditor(areas, devices, entities), device.id, entity.entity_id


def _memory(editor: RegistryEditor) -> dict[str, Any]:
    return {"area": {a.id: a.to_dict() for a in editor.areas.all()},
            "device": {d.id: d.to_dict() for d in editor.devices.all()},
            "entity": {e.entity_id: e.to_dict() for e in editor.entities.all()}}


def _disk(store: RegistryStore) -> dict[str, Any]:
    return {kind: store.load(kind) for kind in ("area", "device", "entity")}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["area_create", "area_update", "area_delete", "device", "entity"]), fields=FIELDS)
def test_any_edit_is_whole_or_refused_and_memory_equals_disk(tmp_path: Path, target: str,
                                                             fields: dict[str, Any]) -> None:
    path = tmp_path / f"registry-{abs(hash((target, repr(fields))))}.db"
    store, editor, device_id, entity_id = _setup(path)
    try:
        before = _disk(store)
        try:
            if target == "area_create":
                editor.create_area(fields)
            elif target == "area_update":
                editor.update_area("hall", fields)
            elif target == "area_delete":
                editor.delete_area(fields.get("name"))
            elif target == "device":
                editor.update_device(device_id, fields)
            else:
                editor.update_entity(entity_id, fields)
        except CommandError as err:
            assert err.code in ("invalid_format", "invalid_info", "not_found", "not_supported") and err.message
            assert _disk(store) == before  # refused whole
        assert _memory(editor) == _disk(store)
    finally:
        store.close()
        path.unlink()


def test_device_disable_follows_to_its_entities_and_back(tmp_path: Path) -> None:
    store, editor, device_id, entity_id = _setup(tmp_path / "r.db")
    editor.update_entity(entity_id, {"disabled_by": "user"})
    editor.update_device(device_id, {"disabled_by": "user"})
    assert editor.entity(entity_id).disabled_by == "user"  # the household's own choice is kept
    editor.update_entity(entity_id, {"disabled_by": None})
    editor.update_device(device_id, {"disabled_by": None})
    editor.update_device(device_id, {"disabled_by": "user"})
    assert editor.entity(entity_id).disabled_by == "device"
    editor.update_device(device_id, {"disabled_by": None})
    assert editor.entity(entity_id).disabled_by is None
    assert _memory(editor) == _disk(store)
    store.close()
