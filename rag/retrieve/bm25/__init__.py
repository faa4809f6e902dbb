"""BM25 keyword search over a collection's chunks, Japanese-aware, kept in step with ingest.

Terms come from `tokens` (NFKC, lower case, bigrams over Japanese runs). The index (`index`) is
a large base segment of raw term counts plus small delta segments (`segment`), weighted at query
time for the query's terms only, so a refresh after a change costs the changed chunks, not the
collection: it tokenizes the new chunks into a delta, marks deleted ones dead, and updates the
collection statistics (chunk count, total length, document frequencies) by the difference.

The index is cached on disk under `RAG_DATA_DIR/bm25/` (segments as memory-mapped arrays, and a
small state file naming them) and in memory, keyed by the collection's write version, which
lives in the store (`rag.state`) and changes with every add, replace, prune and delete by any
process or machine; a stale index is refreshed from the store's chunks on the next search. The
files are only a cache: a fresh data dir builds them from the store.
Fusion with vectors lives in `rag.retrieve.hybrid`; this module knows nothing about embeddings.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import Settings
from rag.retrieve.bm25.index import K1, B, BM25Index, SyncState
from rag.retrieve.bm25.segment import Segment, Vocabulary, pack, unpack
from rag.retrieve.bm25.tokens import _CJK, _IS_CJK, _KANJI, _RUN, _SPLIT, Tokenizer, tokenize
from rag.store import store_key

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.state import Manifest

__all__ = ["B", "K1", "BM25Index", "Segment", "SyncState", "Tokenizer", "Vocabulary", "tokenize", "_CJK", "_IS_CJK",
           "_KANJI", "_RUN", "_SPLIT", "cached", "index_for", "refresh", "allowed_rows", "clear_memory"]

log = logging.getLogger(__name__)

FORMAT = 6
"""Bumped when the tokenizer or the file layout changes, so old index files are rebuilt."""
_FETCH_BATCH = 5000
STALE_SEGMENT_S = 3600.0
"""A segment folder no state file names is deleted after this long (another process may be
about to name it)."""


# --- keeping the index in step with a collection ------------------------------------------------

_cache: dict[tuple[str, str, str], BM25Index] = {}
_locks: dict[tuple[str, str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def index_path(settings: Settings, collection_name: str) -> Path:
    return settings.data_dir / "bm25" / f"{collection_name}.npz"


def collection_version(settings: Settings, collection_name: str) -> str:
    """The store's write version of the collection (one small read)."""
    from rag.state import read_version

    return read_version(settings, collection_name)


def bump_version(settings: Settings, collection_name: str) -> str:
    """For writers that bypass `Ingestor` (the eval collections): mark the collection changed."""
    from rag.state import Manifest

    return Manifest(settings, collection_name).bump()


def cached(settings: Settings, collection: Collection) -> BM25Index | None:
    """The index this process holds for `collection`, as it is: no store read, no refresh."""
    return _cache.get((store_key(settings), str(settings.data_dir.absolute()), collection.name))


def index_for(settings: Settings, collection: Collection, version: str | None = None) -> BM25Index:
    """The BM25 index of `collection`, current with its latest write; built or refreshed lazily.

    Current means built at the store's write version of the collection (`version` when the
    caller has just read it, else one small read). An index read from disk must also hold as
    many chunks as Chroma does, which catches writes that bypassed the version; that check is
    not repeated per search, because `count()` costs about 5 ms at 100k chunks. A stale index
    in memory is refreshed from itself; else from the one on disk, whatever its version.
    """
    key = (store_key(settings), str(settings.data_dir.absolute()), collection.name)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if version is None:
            version = collection_version(settings, collection.name)
        cached = _cache.get(key)
        if cached is not None and cached.version == version:
            return cached
        path = index_path(settings, collection.name)
        previous = cached if cached is not None else load(path, collection.name)
        if previous is not None and previous.version == version and cached is None \
                and len(previous) == collection.count():
            index = previous
        else:
            from rag.state import Manifest

            index = refresh(collection, previous, Manifest(settings, collection.name), version)
            save(index, path, collection.name)
        _cache[key] = index
        return index


CLOCK_SKEW_S = 300.0
"""A refresh re-reads the manifest records written this long before its last one, so machines
whose clocks differ by less than this never miss each other's writes."""


def refresh(collection: Collection, previous: BM25Index | None, manifest: Manifest | None = None,
            version: str = "") -> BM25Index:
    """An index matching the collection now, tokenizing only chunks `previous` does not hold.

    With the store's manifest, only the files whose records changed since the last refresh
    (deletions leave a record too) are read again: O(change), not O(collection). If the result
    does not hold as many chunks as the store (writes that bypass the manifest, such as the eval
    collections, or a run killed between a chunk write and its record), every id is listed
    instead, which is always right.
    """
    started = time.perf_counter()
    synced_at = time.time()
    index = None
    if previous is not None and previous.sync.synced_at and manifest is not None:
        index = _refresh_changed_files(collection, previous, manifest, version)
        how = "changed files"
    if index is None:
        # the manifest's record times first: a file written after this read is re-read next time
        marks = {r.path: r.at for r in manifest.all()} if manifest is not None else {}
        index = _refresh_all_ids(collection, previous, version, marks)
        how = "all ids"
    index.sync.synced_at = synced_at
    log.info("BM25 index of %s: %d chunks (%d tokenized) by %s in %.2f s", collection.name,
             len(index), index.sync.tokenized, how, time.perf_counter() - started)
    return index


def _refresh_changed_files(collection: Collection, previous: BM25Index, manifest: Manifest,
                           version: str) -> BM25Index | None:
    marks = previous.sync.marks
    changed = {r.path: r for r in manifest.changed_since(previous.sync.synced_at - CLOCK_SKEW_S)
               if marks.get(r.path) != r.at}
    live = [p for p, r in changed.items() if r.state != "deleted"]
    ids: list[str] = []
    texts: list[str] = []
    paths: list[str] = []
    for start in range(0, len(live), 100):
        got = collection.get(where={"path": {"$in": live[start:start + 100]}},
                             include=["documents", "metadatas"])
        ids.extend(got["ids"])
        texts.extend(d or "" for d in got["documents"])
        paths.extend(str((m or {}).get("path", "")) for m in got["metadatas"])
    sync = SyncState(marks={**{p: at for p, at in marks.items() if p not in changed},
                            **{p: r.at for p, r in changed.items() if r.state != "deleted"}},
                     tokenized=len(ids))
    previous.vocab.truncate(previous.n_terms)
    new = Segment.from_texts(ids, texts, previous.vocab, paths, previous.tokenizer) if ids else None
    index = previous.updated(previous.rows_of_paths(list(changed)), new, version, sync)
    if len(index) != collection.count():
        return None
    return index


def _refresh_all_ids(collection: Collection, previous: BM25Index | None, version: str,
                     marks: dict[str, float]) -> BM25Index:
    ids = _all_ids(collection)
    listed = set(ids)
    known = previous.rows if previous is not None else {}
    todo = [i for i in ids if i not in known]
    paths: list[str] = []

    def fetch(part: list[str]) -> dict[str, Any]:
        return collection.get(ids=part, include=["documents", "metadatas"])

    def texts() -> Iterator[str]:
        """Streamed, so a million chunks' texts never sit in memory at once; the next batch is
        read from the store while this one is tokenized."""
        batches = [todo[start : start + _FETCH_BATCH] for start in range(0, len(todo), _FETCH_BATCH)]
        with ThreadPoolExecutor(1) as reader:
            coming = reader.submit(fetch, batches[0]) if batches else None
            for k, part in enumerate(batches):
                got = coming.result()
                if k + 1 < len(batches):
                    coming = reader.submit(fetch, batches[k + 1])
                by_id = {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}
                for i in part:
                    text, meta = by_id.get(i, ("", {}))
                    paths.append(str((meta or {}).get("path", "")))
                    yield text or ""

    sync = SyncState(marks=marks, tokenized=len(todo))
    if previous is None:
        vocab = Vocabulary()
        segment = Segment.from_texts(todo, texts(), vocab)
        return BM25Index([segment.with_paths(paths)], vocab, version=version, sync=sync)
    previous.vocab.truncate(previous.n_terms)
    new = Segment.from_texts(todo, texts(), previous.vocab, tokenizer=previous.tokenizer).with_paths(paths) \
        if todo else None
    gone = np.array([r for i, r in previous.rows.items() if i not in listed], dtype=np.int64)
    return previous.updated(gone, new, version, sync)


def _all_ids(collection: Collection) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        got = collection.get(include=[], limit=_FETCH_BATCH, offset=offset)
        ids.extend(got["ids"])
        if len(got["ids"]) < _FETCH_BATCH:
            return ids
        offset += _FETCH_BATCH


# --- on disk --------------------------------------------------------------------------------


def save(index: BM25Index, path: Path, collection: str) -> None:
    """Write the segments the folder lacks, then the small state file that names them."""
    folder = _segment_folder(path)
    folder.mkdir(parents=True, exist_ok=True)
    for segment in index.segments:
        segment.save(folder)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(
            handle,
            meta=np.asarray([FORMAT], dtype=np.int64),
            collection=pack([collection]), version=pack([index.version]),
            segments=pack(s.name for s in index.segments), dead=index.dead_rows.astype(np.int64),
            synced_at=np.asarray([index.sync.synced_at], dtype=np.float64),
            mark_paths=pack(index.sync.marks),
            mark_at=np.asarray(list(index.sync.marks.values()), dtype=np.float64),
        )
    os.replace(tmp, path)
    _drop_stale_segments(folder, {s.name for s in index.segments})


def load(path: Path, collection: str) -> BM25Index | None:
    """The index saved at `path` (its segments memory-mapped), or None when missing or unusable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if int(f["meta"][0]) != FORMAT or unpack(f["collection"]) != [collection]:
                return None
            names = unpack(f["segments"])
            dead_rows = f["dead"]
            sync = SyncState(float(f["synced_at"][0]),
                             dict(zip(unpack(f["mark_paths"]), f["mark_at"].tolist(), strict=True)))
            version = (unpack(f["version"]) or [""])[0]
        folder = _segment_folder(path)
        segments = [Segment.load(folder, name) for name in names]
        dead = np.zeros(sum(len(s) for s in segments), dtype=bool)
        dead[dead_rows] = True
        vocab = Vocabulary(t for s in segments for t in s.terms)
        return BM25Index(segments, vocab, dead, version, sync=sync)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign file is a cache miss, not an error
        log.warning("ignoring unreadable BM25 index %s: %s", path, exc)
        return None


def _segment_folder(path: Path) -> Path:
    return path.with_name(f"{path.stem}.segments")


def _drop_stale_segments(folder: Path, keep: set[str]) -> None:
    now = time.time()
    for entry in folder.iterdir():
        try:
            if entry.name not in keep and now - entry.stat().st_mtime > STALE_SEGMENT_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def allowed_rows(index: BM25Index, collection: Collection, where: dict[str, Any] | None) -> np.ndarray | None:
    """Rows passing a Chroma `where` filter, asked of Chroma itself so both searches agree."""
    if not where:
        return None
    mask = np.zeros(len(index.ids), dtype=bool)
    got = collection.get(where=where, include=[])
    rows = [index.rows[i] for i in got["ids"] if i in index.rows]
    mask[rows] = True
    return mask


def clear_memory() -> None:
    """Forget in-process indexes (tests)."""
    _cache.clear()
