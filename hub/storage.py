"""Registry storage: embedded SQLite in WAL mode, versioned schema, write-through commits.

Registries (devices, entities, areas, ignored discoveries, tokens, ...) are small and
precious, so every change is committed at once with ``synchronous=FULL``: a SIGKILL
or power cut at any moment loses nothing that was acknowledged. History lives in a
separate database (see ``recorder.py``) so that its volume can never endanger the
registries.

A database that fails its integrity check at start-up is moved aside and restored
from the backup taken at the last clean start (or rebuilt empty), with a clear log
message naming both files.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .file_modes import PRIVATE_DIR, create_private

_LOGGER = logging.getLogger(__name__)


class StorageError(Exception):
    """The registry database cannot be used."""


def _migrate_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,"
        " updated REAL NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID"
    )


def _migrate_2(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
        " scopes TEXT NOT NULL, created REAL NOT NULL, last_used REAL, revoked REAL)"
    )


def _migrate_3(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE tokens ADD COLUMN expires REAL")  # absolute (epoch seconds); NULL: never


# Index i holds the step from schema version i to i + 1. Append; never edit a released step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2, _migrate_3]
SCHEMA_VERSION = len(MIGRATIONS)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _healthy(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
            return bool(row and row[0] == "ok")
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def snapshot_database(source: sqlite3.Connection, dest: Path) -> None:
    """Write a consistent copy of ``source`` to ``dest`` (owner-only), atomically: SQLite's online backup API
    into ``dest.tmp``, then a rename. Safe while other connections (or processes) write: the copy is one
    snapshot, never a file copy of a live WAL database. Used for ``registry.db.bak`` and by ``qilu_hub.backup``."""
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    create_private(tmp)  # a copy of the registry holds the token hashes too
    out = sqlite3.connect(tmp)
    try:
        source.backup(out)
    finally:
        out.close()
    tmp.replace(dest)


def integrity_check(path: Path) -> str:
    """``PRAGMA integrity_check`` of a database file: "ok", or what is wrong (also for a file that is no database)."""
    try:
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("PRAGMA integrity_check").fetchone()
            return str(row[0]) if row else "no answer"
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return str(err)


class RegistryStore:
    """Key/JSON records grouped by kind, plus the tokens table. Thread-safe, write-through."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self._lock = threading.RLock()
        self._batch_depth = 0  # > 0 while a batch's transaction is open: transactions inside it are savepoints
        self.recovered_from: str | None = None
        if self.path.exists() and not _healthy(self.path):
            self._recover()
        create_private(self.path)  # token hashes: owner-only, whatever the umask
        self._conn = _connect(self.path)
        self._migrate()
        self._backup()

    # -- set-up -------------------------------------------------------------------------
    def _recover(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        if self.backup_path.exists() and _healthy(self.backup_path):
            create_private(self.path)  # copyfile keeps the mode of a file it overwrites
            shutil.copyfile(self.backup_path, self.path)
            self.recovered_from = "backup"
            _LOGGER.error("Registry database %s was corrupt; moved to %s and restored from %s",
                          self.path, aside, self.backup_path)
        else:
            self.recovered_from = "empty"
            _LOGGER.error("Registry database %s was corrupt and no good backup exists; moved to %s and "
                          "started empty", self.path, aside)

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}, newer than this qilu-hub ({SCHEMA_VERSION}); "
                    "upgrade qilu-hub or restore an older backup"
                )
            for step in range(version, SCHEMA_VERSION):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    MIGRATIONS[step](self._conn)
                    self._conn.execute(f"PRAGMA user_version={step + 1}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                _LOGGER.info("Migrated %s to schema version %d", self.path.name, step + 1)

    def _backup(self) -> None:
        """Copy the database while it is known good; used by ``_recover`` after corruption."""
        with self._lock:
            snapshot_database(self._conn, self.backup_path)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- records ------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[sqlite3.Connection]:
        """Many writes in one transaction and one synchronous commit (a Matter bridge's hundred devices and
        entities: one fsync instead of two hundred). Every write made on this thread meanwhile joins it, a
        ``transaction()`` inside it becomes a savepoint; nothing is on disk until the outermost batch ends, and
        if it fails nothing of it is. Hold no ``await`` inside: the store's lock is held throughout."""
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield self._conn
                finally:
                    self._batch_depth -= 1
                return
            self._batch_depth = 1
            try:
                yield from self._committed("changes")
            finally:
                self._batch_depth = 0

    @property
    def in_batch(self) -> bool:
        return self._batch_depth > 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Several writes committed together (a device merge moves entities atomically)."""
        with self._lock:
            if self._batch_depth:
                yield from self._savepoint()
                return
            yield from self._committed("change")

    def _committed(self, what: str) -> Iterator[sqlite3.Connection]:
        """One top-level transaction (a batch's or a lone one's): committed whole, or rolled back whole."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as err:
            # SQLite may already have rolled back (SQLITE_FULL does): a second ROLLBACK would raise
            # "no transaction is active" and hide the real cause.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise StorageError(f"{self.path}: {what} not saved: {err}") from err
            raise

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        """A transaction nested in a batch: undone alone if it fails, committed with the batch otherwise."""
        self._conn.execute("SAVEPOINT nested")
        try:
            yield self._conn
            self._conn.execute("RELEASE nested")
        except BaseException as err:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK TO nested")
                self._conn.execute("RELEASE nested")
            if isinstance(err, sqlite3.Error):
                raise StorageError(f"{self.path}: change not saved: {err}") from err
            raise

    def put(self, kind: str, key: str, data: dict[str, Any], conn: sqlite3.Connection | None = None) -> None:
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        sql = "INSERT OR REPLACE INTO records (kind, key, data, updated) VALUES (?, ?, ?, ?)"
        if conn is not None:
            conn.execute(sql, (kind, key, payload, time.time()))
            return
        with self._lock:
            try:
                self._conn.execute(sql, (kind, key, payload, time.time()))
            except sqlite3.Error as err:
                raise StorageError(f"{self.path}: change not saved: {err}") from err

    def delete(self, kind: str, key: str, conn: sqlite3.Connection | None = None) -> None:
        sql = "DELETE FROM records WHERE kind = ? AND key = ?"
        if conn is not None:
            conn.execute(sql, (kind, key))
            return
        with self._lock:
            self._conn.execute(sql, (kind, key))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT data FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def load(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT key, data FROM records WHERE kind = ?", (kind,)).fetchall()
        return {key: json.loads(data) for key, data in rows}

    def data_version(self) -> int:
        """Changes whenever another connection (another process: the command line) commits to this
        database; this process's own writes leave it alone. Cheap enough to poll."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                _LOGGER.warning("Checkpoint of %s failed at close", self.path)
            self._conn.close()
