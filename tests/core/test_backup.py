"""Backups with real hubs and real files: backup → wipe → restore loses nothing, consistency under writes,
damaged archives refused without changes, no restore under a running hub, retention, the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer
from qilu_hub.backup import AUTO_PREFIX, BackupError, BackupScheduler, create_backup, restore_backup
from qilu_hub.cli import main
from qilu_hub.recognition.labels import LabelStore
from qilu_hub.setup import load_hub_config
from qilu_hub.storage import integrity_check

CONFIG = """\
hub:
  name: Home
recorder:
  commit_interval: 0.05
recognition:
  enabled: false
  model: models/household.onnx
areas:
  - name: Kitchen
"""
NOW = 1_700_010_000.0
SCENE = "home_scenes:\n  - name: evening\n    actions: []\n"


def _write_config_dir(config_dir: Path) -> None:
    (config_dir / "scenes").mkdir(parents=True)
    (config_dir / "models").mkdir()
    (config_dir / "configuration.yaml").write_text(CONFIG, encoding="utf-8")
    (config_dir / "scenes" / "evening.yaml").write_text(SCENE, encoding="utf-8")
    (config_dir / "models" / "household.onnx").write_bytes(os.urandom(4096))


async def _start(config_dir: Path) -> tuple[Hub, ApiServer]:
    hub = Hub(config_dir, load_hub_config(config_dir))
    hub.add_component(LabelStore(clock=lambda: NOW))  # labels are checked against "now": a fixed one
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    return hub, api


def _registry_rows(hub: Hub) -> tuple[list[Any], list[Any]]:
    return (sorted(hub.storage.execute("SELECT kind, key, data, updated FROM records")),
            sorted(hub.storage.execute("SELECT * FROM tokens")))


def _tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


async def _status(api: ApiServer, token: str) -> int:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{api.url}/api/states", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_backup_wipe_restore_loses_nothing(tmp_path: Path) -> None:
    config_dir, backups = tmp_path / "config", tmp_path / "backups"
    _write_config_dir(config_dir)
    hub, api = await _start(config_dir)
    garage = hub.areas.async_get_or_create("Garage", floor="ground")
    device = hub.devices.async_get_or_create(source="test", name="Door sensor", identifiers=[("test", "door-1")],
                                             manufacturer="Qilu", area_id=garage.id)
    hub.devices.async_update(device.id, name_by_user="Garage door")
    hub.entities.async_get_or_create(unique_id="door-1-contact", capabilities=["door"], name="Door",
                                     device_id=device.id)
    _, phone = hub.tokens.create("phone", Scopes(areas=frozenset({garage.id})))
    _, revoked = hub.tokens.create("old tablet", Scopes(read_only=True))
    hub.tokens.revoke(next(t.id for t in hub.tokens.list() if t.name == "old tablet"))
    labels = hub.components["recognition_labels"]
    assert isinstance(labels, LabelStore)
    labels.add("cooking", start=1_700_000_000.0, end=1_700_001_800.0, note="dumplings")
    assert await _status(api, phone) == 200
    rows = _registry_rows(hub)
    files = {name: (config_dir / name).read_bytes()
             for name in ("configuration.yaml", "scenes/evening.yaml", "models/household.onnx")}
    label_list = [label.to_dict() for label in labels.labels()]

    archive = await asyncio.to_thread(create_backup, config_dir, backups, hub.config)  # while the hub runs
    await hub.async_stop()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # token hashes and the MQTT password are inside

    shutil.rmtree(config_dir)
    assert restore_backup(archive, config_dir)
    hub, api = await _start(config_dir)
    try:
        assert _registry_rows(hub) == rows  # every device, entity, area, name, token hash, label record
        assert hub.devices.get(device.id).display_name == "Garage door"  # type: ignore[union-attr]
        assert hub.areas.get(garage.id).name == "Garage"  # type: ignore[union-attr]
        restored_labels = hub.components["recognition_labels"]
        assert isinstance(restored_labels, LabelStore)
        assert [label.to_dict() for label in restored_labels.labels()] == label_list
        for name, data in files.items():
            assert (config_dir / name).read_bytes() == data
        assert await _status(api, phone) == 200  # the token still authenticates
        assert await _status(api, revoked) == 401  # and a revoked one stays revoked
    finally:
        await hub.async_stop()


async def test_backup_while_the_hub_writes_is_consistent(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    _write_config_dir(config_dir)
    hub, _ = await _start(config_dir)
    stop = asyncio.Event()

    async def write() -> int:
        n = 0
        while not stop.is_set() and n < 2000:  # bounded
            hub.states.async_set("sensor.load", n, {"i": n})
            hub.areas.async_get_or_create(f"Room {n}")
            n += 1
            await asyncio.sleep(0)
        return n

    writer = asyncio.create_task(write())
    try:
        archives = [await asyncio.to_thread(create_backup, config_dir, tmp_path / "backups", hub.config,
                                            history=True) for _ in range(3)]
    finally:
        stop.set()
        written = await writer
        await hub.async_stop()
    assert written > 0
    for i, archive in enumerate(archives):
        target = tmp_path / f"restored-{i}"
        names = restore_backup(archive, target)
        assert {"registry.db", "history.db"} <= set(names)
        assert integrity_check(target / "registry.db") == "ok"
        assert integrity_check(target / "history.db") == "ok"
        restored, _ = await _start(target)
        rooms = [a.name for a in restored.areas.all() if a.name.startswith("Room ")]
        await restored.async_stop()
        # One snapshot: the rooms are a prefix 0..k-1 of those written, never a gap.
        assert sorted(int(r.split()[1]) for r in rooms) == list(range(len(rooms)))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _repack_with_changed_registry(archive: Path, out: Path) -> None:
    """A well-formed tar.gz whose registry.db differs from the manifest's checksum (tampering, bit rot)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "registry.db":
                data = data[:-1] + bytes([data[-1] ^ 0x01])
            dst.addfile(member, io.BytesIO(data))


async def test_damaged_archive_is_refused_and_changes_nothing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config_dir = tmp_path / "config"
    _write_config_dir(config_dir)
    hub, _ = await _start(config_dir)
    hub.areas.async_get_or_create("Garage")
    await hub.async_stop()
    archive = create_backup(config_dir, tmp_path / "backups", load_hub_config(config_dir))
    hub, _ = await _start(config_dir)
    hub.areas.async_get_or_create("Attic")  # the directory now differs from the archive
    await hub.async_stop()
    before = _tree(config_dir)

    flipped = tmp_path / "flipped.tar.gz"
    shutil.copyfile(archive, flipped)
    _flip_byte(flipped)
    tampered = tmp_path / "tampered.tar.gz"
    _repack_with_changed_registry(archive, tampered)
    for bad, why in ((flipped, "cannot be read|checksum"), (tampered, "registry.db does not match its checksum")):
        with pytest.raises(BackupError, match=why):
            restore_backup(bad, config_dir)
        assert main(["--config", str(config_dir), "backup", "restore", str(bad)]) == 1
        err = capsys.readouterr().err
        assert "restore refused" in err and "Nothing in" in err and "Traceback" not in err
        assert _tree(config_dir) == before  # nothing moved aside, nothing replaced, no staging left


async def test_restore_refused_while_a_hub_runs(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    _write_config_dir(config_dir)
    hub, _ = await _start(config_dir)
    archive = await asyncio.to_thread(create_backup, config_dir, tmp_path / "backups", hub.config)
    before = _tree(config_dir)
    try:
        with pytest.raises(BackupError, match="is running on"):
            restore_backup(archive, config_dir)
    finally:
        await hub.async_stop()
    def files(tree: dict[str, str]) -> dict[str, str]:  # the running hub's databases change by themselves
        return {k: v for k, v in tree.items() if ".db" not in k}

    assert files(_tree(config_dir)) == files(before)
    assert not list(config_dir.rglob("*before-restore*")) and not list(config_dir.glob(".restore-*"))
    assert "registry.db" in restore_backup(archive, config_dir)  # stopped: allowed, old file kept aside
    assert (config_dir / "registry.db.before-restore").is_file()


async def test_scheduled_backups_keep_n_and_list_shows_them(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config_dir, backups = tmp_path / "config", tmp_path / "config" / "backups"
    _write_config_dir(config_dir)
    hub = Hub(config_dir, load_hub_config(config_dir))
    await hub.async_start()
    manual = await asyncio.to_thread(create_backup, config_dir, backups, hub.config)
    scheduler = BackupScheduler(backups, interval=0.01, keep=2, first_delay=0)  # the interval is injected
    hub.add_component(scheduler)
    await scheduler.async_start(hub)
    try:
        for _ in range(500):  # bounded: until four scheduled backups ran
            if scheduler.runs >= 4:
                break
            await asyncio.sleep(0.02)
    finally:
        await scheduler.async_stop()
        await hub.async_stop()
    assert scheduler.runs >= 4 and scheduler.last_error is None
    auto = sorted(p.name for p in backups.glob(f"{AUTO_PREFIX}*"))
    assert len(auto) == 2  # retention: the newest two
    assert manual.exists()  # a backup a person made is never pruned
    assert main(["--config", str(config_dir), "backup", "list"]) == 0
    out = capsys.readouterr().out
    for name in [*auto, manual.name]:
        assert name in out
    assert main(["--config", str(config_dir), "backup", "create", "--history"]) == 0
    created = Path(capsys.readouterr().out.strip())
    assert created.parent == backups
    with tarfile.open(created, "r:gz") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {f["path"] for f in manifest["files"]} >= {"registry.db", "history.db", "configuration.yaml",
                                                       "scenes/evening.yaml", "models/household.onnx"}
    assert manifest["schema_versions"]["registry.db"] >= 3 and manifest["created_at"].endswith("+00:00")


async def test_stopping_during_a_scheduled_backup_waits_for_it_and_prunes(tmp_path: Path) -> None:
    """A backup runs in a worker thread that a stop cannot cancel: the stop waits for it, so it is pruned with the
    rest and no staging folder is left (before, a stop in mid-backup left one archive too many behind)."""
    config_dir, backups = tmp_path / "config", tmp_path / "config" / "backups"
    _write_config_dir(config_dir)
    hub = Hub(config_dir, load_hub_config(config_dir))
    await hub.async_start()
    scheduler = BackupScheduler(backups, interval=0.0, keep=1, first_delay=0)
    hub.add_component(scheduler)
    await scheduler.async_start(hub)
    try:
        for _ in range(1000):  # bounded: until a second backup is being written
            job = scheduler._job
            if scheduler.runs >= 1 and job is not None and not job.done():
                break
            await asyncio.sleep(0.001)
        else:
            pytest.fail("no backup was seen in flight")
    finally:
        await scheduler.async_stop()
        await hub.async_stop()
    assert len(list(backups.glob(f"{AUTO_PREFIX}*"))) == 1  # keep: 1, the in-flight one included
    assert not list(backups.glob(".staging-*"))
