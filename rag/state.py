"""What has been ingested, kept in the store itself: file manifest, write version, record manager.

Everything that two processes or two machines on one Chroma server must agree on lives in Chroma:
- the **manifest**: one record per file (path, source, content digest, chunking fingerprint, chunk
  count, whether its write finished, and the type, pages and flags the Documents page lists), in a
  small collection beside the chunks (`ragfiles_<collection>`), so a fresh data dir pointed at a
  populated server knows at once which files are stored, and a data dir pointed at an empty
  server knows nothing is;
- the **write version**: a token in that collection, replaced by every write (ingest batch,
  delete, prune); readers compare it to know when to refresh BM25, caches and embedded handles;
- the **record manager** LangChain's `index()` needs: which chunk ids exist and which belong to a
  file, answered from the chunk collection itself (ids are content hashes, `path` is metadata), so
  it cannot disagree with the store, and stale chunks of a file (a killed run's orphans
  included) are found by their path, not by a local list that may have missed them.

A file's write is bracketed: its record is first written as `writing` (the intent), then its
chunks, then the record as `done` with its chunk count. A run killed in between leaves a
`writing` record, so the next run re-does that file (and sweeps its old chunks) even if it
changed or vanished meanwhile. A data dir holds only caches (embeddings, BM25 files).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.indexing import RecordManager

from rag import store
from rag.config import Settings

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

VERSION_ID = "~version"
DONE, WRITING, DELETED = "done", "writing", "deleted"
_LIVE = {"$and": [{"kind": "file"}, {"state": {"$ne": DELETED}}]}
_BATCH = 500
_PAGE = 5000
SOURCES_LISTED = 1000
"""Sources the app's filter offers: one read of this many records (~0.1 s on a server); a
million-chunk store's 100,000 files took 20-30 s to read, and no one picks from such a list."""


_sources: dict[tuple[str, str, int], tuple[str, list[str]]] = {}


def manifest_name(collection_name: str) -> str:
    return (store.MANIFEST_PREFIX + collection_name)[:512]


def _file_id(path: str) -> str:
    return "f:" + hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def new_version() -> str:
    """A fresh token: time-ordered for people reading it, random so two machines never collide."""
    return f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"


def _missing(exc: BaseException) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError) or "does not exist" in str(exc).lower()


def _manifest_collection(settings: Settings, collection_name: str, *, create: bool) -> Collection | None:
    chroma = store.client(settings)
    name = manifest_name(collection_name)
    if create:
        return chroma.get_or_create_collection(name, metadata={"created_by": "rag", "of": collection_name})
    try:
        return chroma.get_collection(name)
    except Exception as exc:
        if _missing(exc):
            return None
        raise


_handles: dict[tuple[str, str], tuple[Any, Collection]] = {}
"""Manifest handles for `read_version`, per (store, collection), valid while their client is."""


def read_version(settings: Settings, collection_name: str) -> str:
    """The collection's write version, or "" when nothing was ever written (or it was reset).

    Asked before every question, so the manifest's handle is kept (one read instead of two);
    a handle whose collection a reset dropped is replaced.
    """
    key = (store.store_key(settings), collection_name)
    chroma = store.client(settings)
    held = _handles.get(key)
    coll = held[1] if held is not None and held[0] is chroma else None
    if coll is None:
        coll = _manifest_collection(settings, collection_name, create=False)
        if coll is None:
            return ""
        _handles[key] = (chroma, coll)
    try:
        got = coll.get(ids=[VERSION_ID], include=["metadatas"])
    except Exception as exc:
        _handles.pop(key, None)
        if _missing(exc):  # dropped by a reset: look again next time
            return read_version(settings, collection_name) if held is not None else ""
        raise
    metas = got["metadatas"] or []
    return str((metas[0] or {}).get("version", "")) if metas else ""


@dataclass(frozen=True)
class FileRecord:
    path: str
    source: str
    digest: str
    fingerprint: str
    chunks: int
    state: str = DONE
    at: float = 0.0
    """When the record was written (the writer's clock); 0 for a record not read from the store."""
    type: str | None = None
    """What the Documents page lists, written at ingest from the file's chunks: its type (`pdf`),
    page count (0 when it has none) and problem flags (`page 3: …`, one a line). None for a
    record written before these were (or by a writer that does not know them): the list derives
    them from that file's chunks instead (`rag.documents`)."""
    pages: int = 0
    flags: str = ""

    @property
    def done(self) -> bool:
        return self.state == DONE

    @property
    def described(self) -> bool:
        return self.type is not None

    def metadata(self) -> dict[str, Any]:
        meta = {"kind": "file", "path": self.path, "source": self.source, "digest": self.digest,
                "fingerprint": self.fingerprint, "chunks": self.chunks, "state": self.state,
                "at": time.time()}
        if self.type is not None:
            meta.update(type=self.type, pages=self.pages, flags=self.flags)
        return meta

    @classmethod
    def of(cls, meta: dict[str, Any]) -> FileRecord:
        kind = meta.get("type")
        return cls(str(meta["path"]), str(meta["source"]), str(meta["digest"]),
                   str(meta["fingerprint"]), int(meta["chunks"]), str(meta.get("state", DONE)),
                   float(meta.get("at", 0.0)), None if kind is None else str(kind),
                   int(meta.get("pages") or 0), str(meta.get("flags") or ""))


class Manifest:
    """One collection's file records and write version, read from and written to the store.

    Each write also replaces the version token, in the same upsert, so a reader never sees new
    records under an old version. The handle is reopened when a reset dropped the collection.
    """

    def __init__(self, settings: Settings, collection_name: str) -> None:
        self.settings = settings
        self.collection_name = collection_name
        self._coll: Collection | None = None

    def _handle(self, *, create: bool) -> Collection | None:
        if self._coll is None:
            self._coll = _manifest_collection(self.settings, self.collection_name, create=create)
        return self._coll

    def _call(self, fn: Callable[[Collection], Any], *, create: bool, empty: Any = None) -> Any:
        for attempt in range(2):
            coll = self._handle(create=create)
            if coll is None:
                return empty
            try:
                return fn(coll)
            except Exception as exc:
                self._coll = None
                if not _missing(exc) or attempt:
                    raise
        return empty

    # --- reading ---------------------------------------------------------------------------------

    def get_many(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        out: dict[str, FileRecord] = {}
        for start in range(0, len(paths), _BATCH):
            ids = [_file_id(p) for p in paths[start : start + _BATCH]]
            got = self._call(lambda c, ids=ids: c.get(ids=ids, include=["metadatas"]), create=False)
            for meta in (got or {}).get("metadatas") or []:
                record = FileRecord.of(meta)
                if record.state != DELETED:
                    out[record.path] = record
        return out

    def get(self, path: str) -> FileRecord | None:
        return self.get_many([path]).get(path)

    def all(self) -> list[FileRecord]:
        records: list[FileRecord] = []
        offset = 0
        while True:
            got = self._call(lambda c, o=offset: c.get(where=_LIVE, include=["metadatas"],
                                                        limit=_PAGE, offset=o), create=False)
            metas = (got or {}).get("metadatas") or []
            records.extend(FileRecord.of(m) for m in metas)
            if len(metas) < _PAGE:
                return records
            offset += _PAGE

    def under(self, root: str) -> list[FileRecord]:
        """Files recorded at or below `root` (a file path or a folder path)."""
        prefix = root.rstrip("/") + "/"
        return [r for r in self.all() if r.path == root or r.path.startswith(prefix)]

    def live_count(self) -> int:
        """Files recorded (finished or being written): the collection's size less the version
        record and the deleted files' tombstones, so no record is read but those few."""
        def count(c: Collection) -> int:
            other = c.get(where={"$or": [{"kind": "version"}, {"state": DELETED}]}, include=[])
            return c.count() - len(other["ids"])

        return int(self._call(count, create=False, empty=0))

    def page(self, limit: int, contains: str = "") -> list[FileRecord]:
        """At most `limit` live records, those whose path contains `contains` (exact case) if given:
        one bounded read, whatever the number of files."""
        def read(c: Collection) -> Any:
            return c.get(where=_LIVE, where_document={"$contains": contains} if contains else None,
                         include=["metadatas"], limit=limit)

        got = self._call(read, create=False)
        return [FileRecord.of(m) for m in (got or {}).get("metadatas") or []]

    def sources(self, limit: int = SOURCES_LISTED) -> list[str]:
        """Distinct sources for the app's filter, sorted; at most `limit` files' worth (a store of
        more lists a bounded part, and the filter takes any other name typed in). Read once per
        write version, not per rerun."""
        version = self.version()
        key = (store.store_key(self.settings), self.collection_name, limit)
        cached = _sources.get(key)
        if cached is None or cached[0] != version:
            cached = _sources[key] = (version, sorted({r.source for r in self.page(limit)}))
        return cached[1]

    def find(self, source: str, path: str) -> list[FileRecord]:
        """Records whose source is `source` or whose path is `path` (one filtered read)."""
        got = self._call(lambda c: c.get(where={"$and": [*_LIVE["$and"], {"$or": [
            {"source": source}, {"path": path}]}]}, include=["metadatas"]), create=False)
        return [FileRecord.of(m) for m in (got or {}).get("metadatas") or []]

    def sample(self, chunks: int, of: int, pages: int, seed: int = 0) -> list[FileRecord]:
        """Live file records at seeded random places, about twice as many as hold `chunks` of the
        collection's `of` chunks: `pages` reads, one at a random offset in each stratum of the
        manifest, in a seeded random order. Reading at an offset costs Chroma time in proportion
        to the offset; a manifest has a tenth of the chunks' rows or fewer."""
        import math
        import random

        def read(c: Collection) -> list[FileRecord]:
            size = c.count()
            per = max(1, math.ceil(2 * chunks * size / max(1, of) / pages))
            rng = random.Random(f"{seed}:{size}:{of}")
            spots = [(0, size)] if size <= per * pages else [
                (lo + rng.randrange(hi - lo - per + 1), per)
                for lo, hi in ((size * i // pages, size * (i + 1) // pages) for i in range(pages))]
            with ThreadPoolExecutor(max_workers=4) as pool:  # a server answers them side by side
                pages_got = list(pool.map(lambda s: c.get(limit=s[1], offset=s[0], include=["metadatas"]), spots))
            out = [FileRecord.of(m) for got in pages_got for m in got["metadatas"] or []
                   if (m or {}).get("kind") == "file" and m.get("state") != DELETED]
            rng.shuffle(out)
            return out

        return list(self._call(read, create=False, empty=[]))

    def version(self) -> str:
        return read_version(self.settings, self.collection_name)

    def changed_since(self, at: float) -> list[FileRecord]:
        """Records written after `at` (this process's clock), deleted files' tombstones included."""
        got = self._call(lambda c: c.get(where={"$and": [{"kind": "file"}, {"at": {"$gt": at}}]},
                                         include=["metadatas"]), create=False)
        return [FileRecord.of(m) for m in (got or {}).get("metadatas") or []]

    # --- writing ---------------------------------------------------------------------------------

    def put(self, records: Sequence[FileRecord]) -> str:
        """Write these records and a new version in one upsert; returns the version."""
        version = new_version()
        store.will_write(version)
        ids = [_file_id(r.path) for r in records] + [VERSION_ID]
        metas = [r.metadata() for r in records] + [{"kind": "version", "version": version, "at": time.time()}]
        docs = [r.path for r in records] + [VERSION_ID]
        self._call(lambda c: c.upsert(ids=ids, metadatas=metas, documents=docs,
                                      embeddings=[[1.0]] * len(ids)), create=True)
        store.note_version(self.settings, self.collection_name, version)
        return version

    def bump(self) -> str:
        """Mark the collection as changed (writers that keep no file records: the eval collections)."""
        return self.put([])

    def remove(self, paths: Sequence[str]) -> str:
        """Mark files deleted: a tombstone, not a deletion, so readers that refresh by what
        changed (BM25 on another machine) learn that the file is gone."""
        return self.put([FileRecord(p, "", "", "", 0, DELETED) for p in paths])


def store_counts(chunks: Collection, paths: Sequence[str]) -> Counter[str]:
    """How many chunks the store holds for each path (one read per 100 paths)."""
    counts: Counter[str] = Counter()
    for start in range(0, len(paths), 100):
        part = list(paths[start : start + 100])
        got = chunks.get(where={"path": {"$in": part}}, include=["metadatas"])
        counts.update(str((m or {}).get("path")) for m in got["metadatas"] or [])
    return counts


class StoreRecordManager(RecordManager):
    """LangChain's record manager contract, answered by the chunk collection itself.

    `exists` asks the store for the ids; `list_keys(group_ids=...)` asks it for every chunk whose
    `path` is in the group, less those `update` saw during this run after `before`, which is
    exactly the stale chunks `index()` cleans up, whoever wrote them. Update times live only in
    memory: they matter within one `index()` call, and the store stays the only truth.
    """

    def __init__(self, namespace: str, chunks: Callable[[], Collection], group_key: str = "path") -> None:
        super().__init__(namespace)
        self._chunks = chunks
        self._group_key = group_key
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self._last_time = 0.0

    def create_schema(self) -> None:
        """Nothing to create: the chunk collection is the schema."""

    async def acreate_schema(self) -> None:
        self.create_schema()

    def get_time(self) -> float:
        """Strictly increasing, so a record written after an index run starts is never 'old'."""
        with self._lock:
            self._last_time = max(time.time(), self._last_time + 1e-6)
            return self._last_time

    async def aget_time(self) -> float:
        return self.get_time()

    def update(self, keys: Sequence[str], *, group_ids: Sequence[str | None] | None = None,
               time_at_least: float | None = None) -> None:
        if group_ids is not None and len(group_ids) != len(keys):
            raise ValueError("keys and group_ids must have the same length")
        now = self.get_time()
        if time_at_least is not None and now < time_at_least:
            raise ValueError(f"clock went backwards: {now} < {time_at_least}")
        with self._lock:
            self._touched.update(dict.fromkeys(keys, now))

    async def aupdate(self, keys: Sequence[str], *, group_ids=None, time_at_least=None) -> None:
        self.update(keys, group_ids=group_ids, time_at_least=time_at_least)

    def exists(self, keys: Sequence[str]) -> list[bool]:
        found: set[str] = set()
        coll = self._chunks()
        for start in range(0, len(keys), _BATCH):
            found.update(coll.get(ids=list(keys[start : start + _BATCH]), include=[])["ids"])
        return [k in found for k in keys]

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        return self.exists(keys)

    def list_keys(self, *, before: float | None = None, after: float | None = None,
                  group_ids: Sequence[str] | None = None, limit: int | None = None) -> list[str]:
        coll = self._chunks()
        if group_ids is None:
            ids = coll.get(include=[])["ids"]
        else:
            ids = []
            for start in range(0, len(group_ids), 100):
                part = list(group_ids[start : start + 100])
                ids.extend(coll.get(where={self._group_key: {"$in": part}}, include=[])["ids"])
        with self._lock:
            touched = dict(self._touched)
        out = []
        for key in ids:
            at = touched.get(key, float("-inf"))
            if (before is None or at < before) and (after is None or at > after):
                out.append(key)
                if limit and len(out) >= limit:
                    break
        return out

    async def alist_keys(self, *, before=None, after=None, group_ids=None, limit=None) -> list[str]:
        return self.list_keys(before=before, after=after, group_ids=group_ids, limit=limit)

    def delete_keys(self, keys: Sequence[str]) -> None:
        """`index()` deletes from the store itself; here only forget the keys' update times."""
        with self._lock:
            for key in keys:
                self._touched.pop(key, None)

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        self.delete_keys(keys)

    def count(self) -> int:
        return self._chunks().count()
