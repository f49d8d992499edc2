"""The recorder: state history in its own SQLite file, with retention and a hard size cap.

State changes are buffered in memory and committed once per ``commit_interval``
(one second by default) in a worker thread, so the event loop never waits on the
disk and a crash loses at most the last interval. Before each commit the recorder
makes room: it deletes the oldest rows so that the database stays under
``max_bytes`` (freed pages are reused by SQLite, so the file stops growing), and it
checkpoints the WAL so that the journal cannot grow beside it. If a single interval
brings more than the cap can hold, the oldest buffered rows are dropped and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bus import Event
from .file_modes import create_private
from .states import EVENT_STATE_CHANGED, StateChangedData

if TYPE_CHECKING:
    from .core import Hub

_LOGGER = logging.getLogger(__name__)

_Row = tuple[str, Any, Any, float, float, str | None, str | None]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS states (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL, value TEXT,"
    " attributes TEXT, last_changed REAL NOT NULL, last_updated REAL NOT NULL, context_id TEXT,"
    " origin TEXT)",
    "CREATE INDEX IF NOT EXISTS states_entity_time ON states (entity_id, last_updated)",
    "CREATE INDEX IF NOT EXISTS states_time ON states (last_updated)",
)
_SCHEMA_VERSION = 1


@dataclass(slots=True)
class RecorderConfig:
    keep_days: float = 10.0
    max_bytes: int = 64 * 1024 * 1024
    commit_interval: float = 1.0
    exclude_domains: tuple[str, ...] = ()
    exclude_entities: tuple[str, ...] = ()


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _text_safe(value: Any) -> Any:
    """``value`` with every str made encodable (lone surrogates become "?"); only used after a failed commit."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_text_safe(k): _text_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_text_safe(v) for v in value)
    return value


class Recorder:
    """A hub component; ``hub.recorder`` once started."""

    name = "recorder"

    def __init__(self, path: Path | str, config: RecorderConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or RecorderConfig()
        self._buffer: list[_Row] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        self._conn: sqlite3.Connection | None = None
        self._unlisten: Any = None
        self._task: asyncio.Task[None] | None = None
        self._avg_row_bytes = 200.0
        self._last_purge: float | None = None  # time.monotonic(): a wall-clock step must not skip or force purges
        self.rows_written = 0
        self.rows_dropped = 0
        self.rows_trimmed = 0
        self.commits = 0
        self.commit_errors = 0
        self.last_error: str | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)
        exclude_domains = set(self.config.exclude_domains)
        exclude_entities = set(self.config.exclude_entities)

        def _on_state_changed(event: Event[StateChangedData]) -> None:
            data = event.data
            entity_id = data["entity_id"]
            new = data["new_state"]
            if new is None or entity_id in exclude_entities:
                return
            if exclude_domains and entity_id.partition(".")[0] in exclude_domains:
                return
            ctx = new.context
            # Encoding happens in the worker thread: the hot path only appends a tuple.
            self._buffer.append((
                entity_id, new.value, new.attributes, new.last_changed, new.last_updated,
                ctx.id if ctx is not None else None, ctx.origin if ctx is not None else None,
            ))

        self._unlisten = hub.bus.listen(EVENT_STATE_CHANGED, _on_state_changed)
        self._task = hub.supervisor.spawn("recorder-commit", self._commit_loop)

    async def async_stop(self) -> None:
        if self._unlisten:
            self._unlisten()
        if self._task:
            self._task.cancel()
        await self.async_flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval)
            await self.async_flush()

    async def async_flush(self) -> None:
        """Commit what is buffered now.

        Once a batch has left the buffer it is committed even if the caller is cancelled: the commit loop is
        cancelled by ``async_stop`` and a history request by a client that went away, and cancelling the
        worker's job before the thread picked it up would silently drop the batch (on a busy machine, often)."""
        if not self._buffer and not self._purge_due():
            return
        batch, self._buffer = self._buffer, []
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self._executor, self._commit_counted, batch))

    def _purge_due(self) -> bool:
        return self._last_purge is None or time.monotonic() - self._last_purge > 3600

    def _commit_counted(self, batch: list[_Row]) -> None:
        """``_commit`` with its failures counted here, in the worker: a shielded job has nobody to report to."""
        try:
            self._commit(batch)
        except sqlite3.Error as err:
            # A full disk or a failing SD card costs history, never the hub: count, log, carry on.
            self.commit_errors += 1
            self.rows_dropped += len(batch)
            if self.last_error != str(err):
                _LOGGER.error("Recorder could not commit %d rows to %s: %s", len(batch), self.path, err)
            self.last_error = str(err)

    # -- worker thread ------------------------------------------------------------------
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect()
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            # History is expendable; the hub must start. Keep the bad file for inspection.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            _LOGGER.error("History database %s is corrupt; moved to %s, starting a new one", self.path, aside)
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    src.rename(Path(str(aside) + suffix))
            conn = self._connect()
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        self._conn = conn

    def _connect(self) -> sqlite3.Connection:
        create_private(self.path)  # who was home when: owner-only
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # auto_vacuum must be set before the first table exists; INCREMENTAL lets us shrink the file.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={max(self.config.max_bytes // 16, 65536)}")
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def _encode_rows(self, batch: list[_Row]) -> list[_Row]:
        """JSON-encode values and attributes; unchanged attribute objects are encoded once."""
        cache: dict[int, tuple[Any, str]] = {}
        out = []
        for entity_id, value, attributes, lc, lu, ctx_id, origin in batch:
            key = id(attributes)
            hit = cache.get(key)
            if hit is None or hit[0] is not attributes:
                hit = (attributes, _encode(attributes) if attributes else "{}")
                cache[key] = hit
            out.append((entity_id, value if isinstance(value, str) else _encode(value), hit[1], lc, lu, ctx_id, origin))
        return out

    def _used_bytes(self) -> int:
        assert self._conn is not None
        page_size, page_count, free = (
            self._conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "page_count", "freelist_count")
        )
        return int((page_count - free) * page_size)

    def _commit(self, batch: list[_Row]) -> None:
        try:
            self._commit_rows(batch)
        except UnicodeEncodeError:
            # Text with no UTF-8 form (a lone surrogate from a driver or an MQTT device) cannot be stored, and
            # the transaction was rolled back: store the interval again with "?" in its place, not lose it all.
            self._commit_rows([_text_safe(row) for row in batch])

    def _commit_rows(self, batch: list[_Row]) -> None:
        conn = self._conn
        if conn is None:
            return
        budget = self.config.max_bytes * 0.8
        if batch:
            # One interval larger than half the cap: keep its newest rows only.
            max_rows = max(int(budget * 0.5 / self._avg_row_bytes), 1)
            if len(batch) > max_rows:
                self.rows_dropped += len(batch) - max_rows
                batch = batch[-max_rows:]
            batch = self._encode_rows(batch)
        incoming = len(batch) * self._avg_row_bytes
        conn.execute("BEGIN IMMEDIATE")
        try:
            excess = self._used_bytes() + incoming - budget
            if excess > 0:
                n = int(excess / self._avg_row_bytes) + 1
                cur = conn.execute(
                    "DELETE FROM states WHERE id IN (SELECT id FROM states ORDER BY id LIMIT ?)", (n,)
                )
                self.rows_trimmed += cur.rowcount
            if self._purge_due():
                cutoff = time.time() - self.config.keep_days * 86400
                conn.execute("DELETE FROM states WHERE last_updated < ?", (cutoff,))
                self._last_purge = time.monotonic()
            if batch:
                conn.executemany(
                    "INSERT INTO states (entity_id, value, attributes, last_changed, last_updated, context_id,"
                    " origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLITE_FULL has already rolled back on its own
                conn.execute("ROLLBACK")
            raise
        self.rows_written += len(batch)
        self.commits += 1
        rows = conn.execute("SELECT count(*) FROM states").fetchone()[0] if self.commits % 16 == 1 else 0
        if rows:
            self._avg_row_bytes = max(self._used_bytes() / rows, 40.0)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        total_pages = conn.execute("PRAGMA page_count").fetchone()[0]
        if total_pages * page_size > self.config.max_bytes and free_pages:
            conn.execute(f"PRAGMA incremental_vacuum({free_pages})")

    # -- queries ------------------------------------------------------------------------
    async def async_history(
        self, start: float, end: float | None = None, entity_ids: list[str] | None = None,
        limit: int = 100000,
    ) -> list[dict[str, Any]]:
        await self.async_flush()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._query, start, end, entity_ids, limit)

    def _query(self, start: float, end: float | None, entity_ids: list[str] | None, limit: int) -> list[dict[str, Any]]:
        assert self._conn is not None
        sql = "SELECT entity_id, value, attributes, last_changed, last_updated FROM states WHERE last_updated >= ?"
        params: list[Any] = [start]
        if end is not None:
            sql += " AND last_updated <= ?"
            params.append(end)
        if entity_ids:
            sql += f" AND entity_id IN ({','.join('?' * len(entity_ids))})"
            params.extend(entity_ids)
        sql += " ORDER BY last_updated LIMIT ?"
        params.append(limit)
        return [
            {"entity_id": e, "state": v, "attributes": json.loads(a or "{}"), "last_changed": lc, "last_updated": lu}
            for e, v, a, lc, lu in self._conn.execute(sql, params)
        ]

    def file_bytes(self) -> int:
        return sum(Path(str(self.path) + s).stat().st_size for s in ("", "-wal") if Path(str(self.path) + s).exists())
