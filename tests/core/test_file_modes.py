"""Secret-holding files are created owner-only whatever the umask; exposed ones are named at start."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.config import ensure_config_dir
from qilu_hub.const import CONFIG_FILE, HISTORY_DB, REGISTRY_DB
from qilu_hub.file_modes import create_private, exposed, warn_exposed
from qilu_hub.storage import RegistryStore
from qilu_hub.tokens import TokenStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: new files 0644, readable by every user
    yield
    os.umask(old)


async def test_hub_files_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    config_dir = ensure_config_dir(tmp_path / "qilu")
    assert mode(config_dir) == 0o700 and mode(config_dir / CONFIG_FILE) == 0o600
    hub = Hub(config_dir, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    hub.tokens.create("phone")
    hub.states.async_set("sensor.x", 1)
    assert hub.recorder is not None
    await hub.recorder.async_flush()
    names = (REGISTRY_DB, REGISTRY_DB + "-wal", REGISTRY_DB + "-shm", REGISTRY_DB + ".bak", HISTORY_DB,
             HISTORY_DB + "-wal")
    try:
        for path in (config_dir / name for name in names):
            assert mode(path) == 0o600, (path, oct(mode(path)))
    finally:
        await hub.async_stop()


def test_cli_token_store_and_restored_backup_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    store = RegistryStore(tmp_path / REGISTRY_DB)
    TokenStore(store).create("cli")
    store.close()
    RegistryStore(tmp_path / REGISTRY_DB).close()  # a clean start backs up the token
    assert mode(tmp_path / REGISTRY_DB) == 0o600
    (tmp_path / REGISTRY_DB).unlink()
    (tmp_path / REGISTRY_DB).write_bytes(b"garbage, not a database" * 100)  # corrupt (0644): restored from .bak
    store = RegistryStore(tmp_path / REGISTRY_DB)
    assert store.recovered_from == "backup" and len(TokenStore(store).list()) == 1
    store.close()
    assert mode(tmp_path / REGISTRY_DB) == 0o600 and mode(tmp_path / (REGISTRY_DB + ".bak")) == 0o600


def test_existing_files_keep_their_mode(tmp_path: Path) -> None:
    path = tmp_path / "mine"
    path.write_text("x")
    os.chmod(path, 0o640)
    create_private(path)
    assert mode(path) == 0o640 and path.read_text() == "x"


async def test_exposed_files_are_named_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(key, 0o644)
    (tmp_path / CONFIG_FILE).write_text("mqtt:\n  password: hunter2\n")
    os.chmod(tmp_path / CONFIG_FILE, 0o604)
    hub = Hub(tmp_path, {"hub": {"tls_key": str(key)}, "recorder": {"commit_interval": 0.05}})
    with caplog.at_level(logging.WARNING, logger="qilu_hub.file_modes"):
        await hub.async_start()
    await hub.async_stop()
    warned = [r.getMessage() for r in caplog.records if r.name == "qilu_hub.file_modes"]
    assert len(warned) == 2, warned
    assert any(str(tmp_path / CONFIG_FILE) in w and "0o604" in w and "chmod 600" in w for w in warned)
    assert any(str(key) in w for w in warned)
    assert all("hunter2" not in w for w in warned)
    assert exposed(tmp_path / REGISTRY_DB) is None  # the hub's own files are not among them


def test_private_files_raise_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "ok"
    create_private(path)
    assert warn_exposed([path, tmp_path / "absent"]) == []
