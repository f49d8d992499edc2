"""Backups of a hub's configuration directory: one ``.tar.gz`` with a manifest, made while the hub runs.

What goes in: ``registry.db`` (devices, entities, areas, the inbox, tokens as stored hashes, household
labels, BLE bind keys), ``configuration.yaml``, the scene files and household models the configuration
names when they lie inside the config directory, the older ``recognition_labels.jsonl``, the hub's CA
(``tls/ca.*``, which every trusting device depends on), and ``history.db``
when asked. Databases are copied with SQLite's online backup API (``storage.snapshot_database``), never as
files, so an archive made while the hub writes is one consistent snapshot.

The manifest (``manifest.json``, first member) records the hub version, schema versions, the time (UTC)
and each file's size and sha256. ``restore`` checks all of it, and ``PRAGMA integrity_check`` on every
database, before it touches the directory; then it moves each current file aside (``*.before-restore``)
and renames the restored one into place, so every file is either the old or the new one. It refuses while
a hub holds the directory's lock (``dir_lock``).

``BackupScheduler`` is the hub component for ``backup: {schedule, keep, directory, history}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .config import f, register_section
from .const import CONFIG_FILE, HISTORY_DB, REGISTRY_DB, __version__
from .dir_lock import DirLock
from .file_modes import PRIVATE_DIR, PRIVATE_FILE
from .storage import SCHEMA_VERSION, integrity_check, snapshot_database

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["BackupError", "BackupInfo", "BackupScheduler", "create_backup", "list_backups", "prune",
           "restore_backup", "scheduler_from_config"]

_LOGGER = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
PREFIX = "qilu-hub-backup-"
AUTO_PREFIX = "qilu-hub-auto-"  # scheduled backups; only these are pruned, never one a person made
SUFFIX = ".tar.gz"
DATABASES = (REGISTRY_DB, HISTORY_DB)
LABELS_FILE = "recognition_labels.jsonl"  # qilu_hub.recognition.labels.LABELS_FILE (not imported: numpy)
MAX_MEMBER_BYTES = 4 * 1024**3  # a manifest naming a larger file is not ours
SCHEDULES = {"daily": 86400.0, "weekly": 7 * 86400.0}

register_section("backup", {
    "schedule": f(str, default="daily", choices=("daily", "weekly", "off"), help="How often the hub backs up"),
    "keep": f(int, default=7, minimum=1, help="Scheduled backups kept; older ones are deleted"),
    "directory": f(str, type(None), default=None,
                   help="Where backups go (relative: to the config dir); default CONFIG_DIR/backups"),
    "history": f(bool, default=False, help="Include history.db in scheduled backups"),
})


class BackupError(Exception):
    """A backup that cannot be made or an archive that cannot be restored; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    created_at: str
    hub_version: str
    files: tuple[str, ...]
    size: int


def backup_dir(config_dir: Path, config: dict[str, Any]) -> Path:
    configured = (config.get("backup") or {}).get("directory")
    if not configured:
        return config_dir / "backups"
    path = Path(configured)
    return path if path.is_absolute() else config_dir / path


def _owned_files(config_dir: Path, config: dict[str, Any]) -> list[str]:
    """Files besides the databases that the hub owns, relative to the config dir (those outside it are skipped)."""
    root = config_dir.resolve()
    found: list[Path] = [config_dir / CONFIG_FILE, config_dir / LABELS_FILE]
    # The hub's CA (hub.tls: auto): every phone and headset trusts this key; a new one means trusting it again on
    # each. The server certificate is not kept: the hub issues a new one from the CA.
    found += [config_dir / "tls" / "ca.crt", config_dir / "tls" / "ca.key"]
    for p in (config.get("scenes") or {}).get("paths") or ["scenes"]:
        path = config_dir / p
        found.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    recognition = config.get("recognition") or {}
    for key in ("model", "review_model"):
        if recognition.get(key):
            found.append(config_dir / recognition[key])
    # The household's models where `model train` writes them by default (recognition/settings.py names them).
    found.extend(config_dir / name for name in ("household_scene.onnx", "household_scene_review.onnx"))
    out: list[str] = []
    for path in found:
        if not path.is_file():
            continue
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            _LOGGER.warning("Backup skips %s: it is outside the config directory %s", path, config_dir)
            continue
        name = rel.as_posix()
        if name not in out and name not in DATABASES:
            out.append(name)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _free_name(directory: Path, prefix: str, stamp: datetime) -> Path:
    # Milliseconds, and "_N" (after "." in ASCII) on a clash: names sort by age, which is what prune relies on.
    base = f"{prefix}{stamp.strftime('%Y%m%dT%H%M%S')}.{stamp.microsecond // 1000:03d}Z"
    candidate = directory / f"{base}{SUFFIX}"
    n = 2
    while candidate.exists():
        candidate = directory / f"{base}_{n}{SUFFIX}"
        n += 1
    return candidate


def create_backup(config_dir: Path, directory: Path, config: dict[str, Any], *, history: bool = False,
                  prefix: str = PREFIX, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    """Write one archive of ``config_dir`` into ``directory``; returns its path. Safe while the hub runs."""
    config_dir = Path(config_dir)
    if not (config_dir / REGISTRY_DB).is_file():
        raise BackupError(f"{config_dir} has no {REGISTRY_DB}: nothing to back up (is --config right?)")
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".staging-") as staging_name:
        staging = Path(staging_name)  # mkdtemp: mode 0700
        members: list[tuple[str, Path]] = []
        schema: dict[str, int] = {}
        for db in DATABASES:
            if db == HISTORY_DB and not history:
                continue
            source_path = config_dir / db
            if not source_path.is_file():
                continue
            source = sqlite3.connect(source_path, timeout=10)
            try:
                snapshot_database(source, staging / db)
            finally:
                source.close()
            result = integrity_check(staging / db)
            if result != "ok":
                raise BackupError(f"{source_path} fails its integrity check ({result}); not backed up")
            schema[db] = _schema_version(staging / db)
            members.append((db, staging / db))
        members.extend((name, config_dir / name) for name in _owned_files(config_dir, config))
        stamp = now()
        files: list[dict[str, Any]] = [{"path": name, "size": path.stat().st_size, "sha256": _sha256(path)}
                                       for name, path in members]
        manifest = {"format": FORMAT, "hub_version": __version__, "created_at": stamp.isoformat(timespec="seconds"),
                    "schema_versions": schema, "files": files}
        target = _free_name(directory, prefix, stamp)
        tmp = staging / "archive.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)  # token hashes, MQTT password
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(data), PRIVATE_FILE, int(stamp.timestamp())
                tar.addfile(info, io.BytesIO(data))
                for (name, path), entry in zip(members, files, strict=True):
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = int(entry["size"]), PRIVATE_FILE, int(stamp.timestamp())
                    with path.open("rb") as src:
                        tar.addfile(info, src)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(target)  # a reader (list, restore) never sees half an archive
    _LOGGER.info("Backup written to %s (%d files)", target, len(members))
    return target


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        src = tar.extractfile(member)
        if src is None:
            raise KeyError(MANIFEST)
        manifest = json.loads(src.read(1 << 20))
    except KeyError:
        raise BackupError(f"{archive} is not a qilu-hub backup: it has no {MANIFEST}") from None
    except ValueError as err:
        raise BackupError(f"{archive}: {MANIFEST} is not valid JSON: {err}") from None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("files"), list)):
        raise BackupError(f"{archive}: {MANIFEST} is not a qilu-hub backup manifest of format {FORMAT}")
    return manifest


def _safe_name(name: Any, archive: Path) -> str:
    if not isinstance(name, str) or not name:
        raise BackupError(f"{archive}: the manifest names a file without a path")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name in (MANIFEST, "") or name.startswith("."):
        raise BackupError(f"{archive}: refusing the file path {name!r} (outside the config directory)")
    return pure.as_posix()


def _verified_copy(config_dir: Path, archive: Path, staging: Path) -> list[str]:
    """Extract every manifest file into ``staging``, checking sizes, checksums and databases; return the names."""
    names: list[str] = []
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            manifest = _read_manifest(tar, archive)
            expected = {}
            for entry in manifest["files"]:
                if not isinstance(entry, dict):
                    raise BackupError(f"{archive}: the manifest's file list is malformed")
                expected[_safe_name(entry.get("path"), archive)] = entry
            listed = {m.name for m in tar.getmembers()} - {MANIFEST}
            if listed != set(expected):
                extra, missing = sorted(listed - set(expected)), sorted(set(expected) - listed)
                raise BackupError(f"{archive}: its files do not match its manifest (extra {extra}, missing {missing})")
            for name, entry in expected.items():
                member = tar.getmember(name)
                size = entry.get("size")
                if not member.isfile() or not isinstance(size, int) or member.size != size or size > MAX_MEMBER_BYTES:
                    raise BackupError(f"{archive}: {name} is not the regular file of {size} bytes its manifest says")
                member_file = tar.extractfile(member)
                assert member_file is not None  # a regular file
                out_path = staging / name
                out_path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
                digest = hashlib.sha256()
                fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
                with os.fdopen(fd, "wb") as out:
                    while block := member_file.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != entry.get("sha256"):
                    raise BackupError(f"{archive}: {name} does not match its checksum (the archive is damaged)")
                names.append(name)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError) and not archive.exists():
            raise BackupError(f"{archive} does not exist") from None
        raise BackupError(f"{archive} cannot be read (damaged or not a backup): {err}") from None
    if REGISTRY_DB not in names:
        raise BackupError(f"{archive} holds no {REGISTRY_DB}")
    for db in DATABASES:
        if db in names:
            result = integrity_check(staging / db)
            if result != "ok":
                raise BackupError(f"{archive}: {db} fails its integrity check ({result})")
    version = _schema_version(staging / REGISTRY_DB)
    if version > SCHEMA_VERSION:
        raise BackupError(f"{archive}: {REGISTRY_DB} has schema version {version}, newer than this qilu-hub "
                          f"({SCHEMA_VERSION}); upgrade qilu-hub first")
    return names


def _aside(path: Path) -> Path:
    candidate = path.with_name(path.name + ".before-restore")
    n = 2
    while candidate.exists():  # an earlier restore's leftovers are never overwritten
        candidate = path.with_name(f"{path.name}.before-restore-{n}")
        n += 1
    return candidate


def restore_backup(archive: Path, config_dir: Path) -> list[str]:
    """Replace ``config_dir``'s files with the archive's; returns the restored names. Refuses while a hub runs."""
    archive, config_dir = Path(archive), Path(config_dir)
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist or is not a file")
    config_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    lock = DirLock(config_dir)
    if not lock.acquire():
        raise BackupError(f"a qilu-hub is running on {config_dir} (it holds {lock.path}); stop it, then restore")
    try:  # held throughout, so a hub started meanwhile warns; nothing is half-restored under it
        with tempfile.TemporaryDirectory(dir=config_dir, prefix=".restore-") as staging_name:
            staging = Path(staging_name)
            names = _verified_copy(config_dir, archive, staging)  # nothing in config_dir changes before this passes
            for name in names:
                target = config_dir / name
                target.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
                # A database's -wal/-shm belong to the old file: left beside the new one, SQLite would replay them.
                companions = ("", "-wal", "-shm") if name in DATABASES else ("",)
                for suffix in companions:
                    current = Path(str(target) + suffix)
                    if current.exists():
                        aside = _aside(current)
                        current.replace(aside)
                        if suffix == "":
                            _LOGGER.info("Moved %s aside to %s", current, aside)
                (staging / name).replace(target)  # one rename: the file is old or new, never half
            return names
    finally:
        lock.release()


def list_backups(directory: Path) -> list[BackupInfo]:
    """Archives in ``directory``, oldest first; an unreadable one is listed with created_at ``"unreadable"``."""
    out: list[BackupInfo] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob(f"qilu-hub-*{SUFFIX}")):
        try:
            with tarfile.open(path, mode="r:gz") as tar:
                manifest = _read_manifest(tar, path)
            files = tuple(str(e.get("path")) for e in manifest["files"] if isinstance(e, dict))
            out.append(BackupInfo(path, str(manifest.get("created_at")), str(manifest.get("hub_version")), files,
                                  path.stat().st_size))
        except (BackupError, tarfile.TarError, zlib.error, EOFError, OSError):
            out.append(BackupInfo(path, "unreadable", "?", (), path.stat().st_size))
    out.sort(key=lambda b: (b.created_at, b.path.name))
    return out


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` scheduled backups (``qilu-hub-auto-*``); returns those deleted."""
    scheduled = sorted(directory.glob(f"{AUTO_PREFIX}*{SUFFIX}")) if directory.is_dir() else []
    doomed = scheduled[:-keep] if keep > 0 else scheduled
    for path in doomed:
        path.unlink(missing_ok=True)
        _LOGGER.info("Deleted old backup %s (keep: %d)", path, keep)
    return doomed


class BackupScheduler:
    """Hub component ``backup``: a backup every ``interval`` seconds (the event loop's monotonic clock), pruned
    to ``keep``. The first one comes when the newest scheduled backup is ``interval`` old (file time), but not
    before ``first_delay`` after start, so a hub that restarts often neither skips backups nor rotates good
    ones out."""

    name = "backup"

    def __init__(self, directory: Path, *, interval: float, keep: int, history: bool = False,
                 first_delay: float = 60.0) -> None:
        self.directory = directory
        self.interval = interval
        self.keep = keep
        self.history = history
        self.first_delay = first_delay
        self.runs = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._job: asyncio.Future[Path] | None = None  # the backup being written in a worker thread
        self._hub: Hub | None = None
        self.ran = asyncio.Event()

    def _first_wait(self) -> float:
        scheduled = sorted(self.directory.glob(f"{AUTO_PREFIX}*{SUFFIX}")) if self.directory.is_dir() else []
        if not scheduled:
            return self.first_delay
        age = max(0.0, time.time() - scheduled[-1].stat().st_mtime)
        return max(self.first_delay, self.interval - age)

    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        self._task = asyncio.create_task(self._loop(self._first_wait()), name="backup-scheduler")

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A thread cannot be cancelled: a backup under way goes on writing after the loop is cancelled. Wait for it,
        # so that it is pruned with the rest and never races the hub closing its databases.
        if self._job is not None:
            with contextlib.suppress(Exception):
                await self._job
            self._job = None

    async def _loop(self, wait: float) -> None:
        while True:
            await asyncio.sleep(wait)
            await self.run_once()
            wait = self.interval

    async def run_once(self) -> Path | None:
        assert self._hub is not None
        hub = self._hub
        def create_and_prune() -> Path:
            made = create_backup(hub.config_dir, self.directory, hub.config, history=self.history, prefix=AUTO_PREFIX)
            prune(self.directory, self.keep)
            return made

        # One job for both steps, shielded: a stop while it runs waits for it (async_stop) instead of leaving a new
        # archive behind unpruned.
        self._job = asyncio.ensure_future(asyncio.to_thread(create_and_prune))
        try:
            path = await asyncio.shield(self._job)
        except (BackupError, OSError, sqlite3.Error) as err:
            self.last_error = str(err)
            _LOGGER.error("Scheduled backup failed: %s", err)
            return None
        self.last_error = None
        self.runs += 1
        self.ran.set()
        return path


def scheduler_from_config(config_dir: Path, config: dict[str, Any]) -> BackupScheduler | None:
    section = config.get("backup") or {}
    interval = SCHEDULES.get(str(section.get("schedule", "daily")))
    if interval is None:
        return None
    return BackupScheduler(backup_dir(Path(config_dir), config), interval=interval, keep=int(section.get("keep", 7)),
                           history=bool(section.get("history", False)))

