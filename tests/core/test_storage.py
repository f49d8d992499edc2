import sqlite3
from pathlib import Path

import pytest

from qilu_hub.storage import SCHEMA_VERSION, RegistryStore, StorageError


def test_schema_is_migrated_and_records_round_trip(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    assert store.schema_version == SCHEMA_VERSION
    store.put("device", "d1", {"name": "Lamp", "n": [1, 2]})
    with store.transaction() as conn:
        store.put("device", "d2", {"name": "Fan"}, conn)
        store.delete("device", "d1", conn)
    store.close()
    again = RegistryStore(tmp_path / "r.db")
    assert again.load("device") == {"d2": {"name": "Fan"}}
    again.close()


def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    store.put("device", "d1", {"v": 1})
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.put("device", "d1", {"v": 2}, conn)
        raise RuntimeError("half way")
    assert store.get("device", "d1") == {"v": 1}
    store.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    RegistryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        RegistryStore(path)


def test_corrupt_database_is_restored_from_backup(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = RegistryStore(path)
    store.put("device", "d1", {"name": "Lamp"})
    store.close()
    RegistryStore(path).close()  # a clean start takes the backup, now holding d1
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(b"this is not a database" * 200)
    recovered = RegistryStore(path)
    assert recovered.recovered_from == "backup"
    assert recovered.get("device", "d1") == {"name": "Lamp"}
    assert recovered.integrity_check() == "ok"
    assert list(tmp_path.glob("r.db.corrupt-*"))  # the bad file is kept for inspection
    recovered.close()
