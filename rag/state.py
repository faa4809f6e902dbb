"""What has been ingested: LangChain's record manager and a file manifest, in one SQLite file.

`SQLiteRecordManager` implements `langchain_core.indexing.RecordManager` (chunk hashes per source,
which `index()` uses to skip unchanged chunks and clean up replaced ones). `Manifest` remembers each
file's content digest so an unchanged file is skipped before it is even read, which is what makes
a re-ingest near-instant. Both are namespaced by collection, so every embedding model has its own.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from langchain_core.indexing import RecordManager

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    group_id TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS records_group ON records (namespace, group_id);
CREATE INDEX IF NOT EXISTS records_time ON records (namespace, updated_at);
CREATE TABLE IF NOT EXISTS files (
    namespace TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    PRIMARY KEY (namespace, path)
);
CREATE TABLE IF NOT EXISTS versions (
    namespace TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"""


class StateDB:
    """One SQLite connection shared by threads behind a lock; writes go through `tx()`.

    WAL mode lets the app read while an ingest writes; explicit transactions make a batch of
    record updates one fsync instead of one per row.
    """

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, check_same_thread=False, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SQLiteRecordManager(RecordManager):
    """LangChain's record manager contract on plain sqlite3, safe across threads."""

    def __init__(self, namespace: str, db: StateDB) -> None:
        super().__init__(namespace)
        self._db = db
        self._lock = threading.Lock()
        self._last_time = 0.0

    def create_schema(self) -> None:
        """The schema is created when the `StateDB` opens."""

    async def acreate_schema(self) -> None:
        self.create_schema()

    def get_time(self) -> float:
        """Strictly increasing, so a record written after an index run starts is never 'old'."""
        with self._lock:
            self._last_time = max(time.time(), self._last_time + 1e-6)
            return self._last_time

    async def aget_time(self) -> float:
        return self.get_time()

    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        if group_ids is None:
            group_ids = [None] * len(keys)
        if len(group_ids) != len(keys):
            raise ValueError("keys and group_ids must have the same length")
        now = self.get_time()
        if time_at_least is not None and now < time_at_least:
            raise ValueError(f"clock went backwards: {now} < {time_at_least}")
        rows = [(self.namespace, k, g, now) for k, g in zip(keys, group_ids, strict=True)]
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key) "
                "DO UPDATE SET group_id = excluded.group_id, updated_at = excluded.updated_at",
                rows,
            )

    async def aupdate(self, keys: Sequence[str], *, group_ids=None, time_at_least=None) -> None:
        self.update(keys, group_ids=group_ids, time_at_least=time_at_least)

    def exists(self, keys: Sequence[str]) -> list[bool]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.rows(
                f"SELECT key FROM records WHERE namespace = ? AND key IN ({marks})",
                [self.namespace, *part],
            )
            found.update(r[0] for r in rows)
        return [k in found for k in keys]

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        return self.exists(keys)

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        sql = "SELECT key FROM records WHERE namespace = ?"
        args: list[object] = [self.namespace]
        if before is not None:
            sql += " AND updated_at < ?"
            args.append(before)
        if after is not None:
            sql += " AND updated_at > ?"
            args.append(after)
        if group_ids is not None:
            sql += f" AND group_id IN ({','.join('?' * len(group_ids))})"
            args.extend(group_ids)
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self._db.rows(sql, args)]

    async def alist_keys(self, *, before=None, after=None, group_ids=None, limit=None) -> list[str]:
        return self.list_keys(before=before, after=after, group_ids=group_ids, limit=limit)

    def delete_keys(self, keys: Sequence[str]) -> None:
        with self._db.tx() as db:
            db.executemany(
                "DELETE FROM records WHERE namespace = ? AND key = ?",
                [(self.namespace, k) for k in keys],
            )

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        self.delete_keys(keys)

    def count(self) -> int:
        return self._db.rows("SELECT COUNT(*) FROM records WHERE namespace = ?", [self.namespace])[0][0]


@dataclass(frozen=True)
class FileRecord:
    path: str
    source: str
    digest: str
    fingerprint: str
    chunks: int


class Manifest:
    """Per-collection file digests, plus a version number bumped on every change to the store."""

    _COLUMNS = "path, source, digest, fingerprint, chunks"

    def __init__(self, namespace: str, db: StateDB) -> None:
        self.namespace = namespace
        self._db = db

    def get(self, path: str) -> FileRecord | None:
        rows = self._db.rows(
            f"SELECT {self._COLUMNS} FROM files WHERE namespace=? AND path=?", [self.namespace, path]
        )
        return FileRecord(*rows[0]) if rows else None

    def put(self, records: Sequence[FileRecord]) -> None:
        now = time.time()
        with self._db.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(self.namespace, r.path, r.source, r.digest, r.fingerprint, r.chunks, now) for r in records],
            )

    def remove(self, paths: Sequence[str]) -> None:
        with self._db.tx() as db:
            db.executemany(
                "DELETE FROM files WHERE namespace=? AND path=?", [(self.namespace, p) for p in paths]
            )

    def under(self, root: str) -> list[FileRecord]:
        """Files recorded at or below `root` (a file path or a folder path)."""
        prefix = root.rstrip("/") + "/"
        rows = self._db.rows(
            f"SELECT {self._COLUMNS} FROM files WHERE namespace=? "
            "AND (path = ? OR substr(path, 1, ?) = ?)",
            [self.namespace, root, len(prefix), prefix],
        )
        return [FileRecord(*r) for r in rows]

    def all(self) -> list[FileRecord]:
        rows = self._db.rows(f"SELECT {self._COLUMNS} FROM files WHERE namespace=?", [self.namespace])
        return [FileRecord(*r) for r in rows]

    def version(self) -> int:
        rows = self._db.rows("SELECT version FROM versions WHERE namespace=?", [self.namespace])
        return rows[0][0] if rows else 0

    def bump(self) -> int:
        """Mark the collection as changed, so caches keyed on its version (BM25, maps) rebuild."""
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO versions VALUES (?, 1) ON CONFLICT (namespace) "
                "DO UPDATE SET version = version + 1",
                [self.namespace],
            )
        return self.version()
