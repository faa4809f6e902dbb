"""Idempotent ingest: files in, chunks embedded and stored, each document whole or not at all.

The pipeline per run: discover files; skip those whose content digest is unchanged since the last
successful ingest (no read, no chunking, no embedding); load and chunk the rest; group whole
documents into batches; embed a batch while the previous one is written; write through LangChain's
`index()` with our record manager (incremental cleanup replaces a changed file's old chunks). A bad
file is reported and skipped; a provider failure stops the run without leaving half a document.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.indexing import index

from rag import store
from rag.config import Settings
from rag.embeddings import EmbeddingInfo, get_embeddings, resolve
from rag.errors import BusyError, LoadError
from rag.ingest.chunking import split_documents
from rag.ingest.loaders import FoundFile, Skipped, discover, load
from rag.ingest.paths import path_key, readable, real
from rag.progress import Progress, ProgressFn
from rag.state import FileRecord, Manifest, SQLiteRecordManager, StateDB

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1
@dataclass
class IngestReport:
    """What a run did, in the shape `rag ingest --json` prints."""

    embedding: EmbeddingInfo
    collection: str
    files_read: int = 0
    files_unchanged: int = 0
    files_unsupported: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": {
                "read": self.files_read,
                "skipped": self.files_unchanged + self.files_unsupported,
                "unchanged": self.files_unchanged,
                "unsupported": self.files_unsupported,
                "failed": [{"path": p, "reason": r} for p, r in self.failed],
            },
            "chunks": {"added": self.added, "updated": self.updated,
                       "skipped": self.skipped, "deleted": self.deleted},
            "collection": self.collection,
            "embedding": self.embedding.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Pending:
    found: FoundFile
    digest: str
    chunks: list[Document]


@contextmanager
def ingest_lock(data_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """One writer per data dir: a second ingest waits up to `wait_s`, then refuses clearly."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "ingest.lock"
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise BusyError(
                        f"Another ingest is running on {data_dir} (pid {holder}).",
                        BusyError.default_fix,
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


class Ingestor:
    """Holds the store, record manager and manifest of one collection for one or more runs."""

    def __init__(self, settings: Settings, info: EmbeddingInfo | None = None) -> None:
        self.settings = settings
        self.info = info or resolve(settings)
        self.embeddings = get_embeddings(settings, self.info)
        self.state = StateDB(settings.state_db)
        namespace = self.info.collection_name
        self.records = SQLiteRecordManager(namespace, self.state)
        self.manifest = Manifest(namespace, self.state)
        self.vectors = store.vector_store(settings, self.info, self.embeddings)
        self.max_batch = store.client(settings).get_max_batch_size()
        """Chroma refuses larger writes (5,461 embedded): a bigger document is written in parts."""
        self.fingerprint = (
            f"v{PIPELINE_VERSION}:size={settings.chunk_size}:overlap={settings.chunk_overlap}"
        )

    def ingest(
        self, paths: list[Path], *, prune: bool = False, progress: ProgressFn | None = None,
        lock_wait_s: float = 0.0,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(self.info, self.info.collection_name)
        with ingest_lock(self.settings.data_dir, lock_wait_s):
            found: list[FoundFile] = []
            for item in discover(paths):
                if isinstance(item, Skipped):
                    if item.reason.startswith("unsupported"):
                        report.files_unsupported += 1
                    else:
                        report.failed.append((item.shown, item.reason))
                else:
                    found.append(item)
            report.deleted += self._drop_aliases(found)
            self._run(found, report, progress)
            if prune:
                report.deleted += self._prune(paths, {f.key for f in found})
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, found: list[FoundFile], report: IngestReport, progress: ProgressFn | None) -> None:
        """Chunk on this thread, embed groups ahead on another, write them in order on a third.

        Embedding runs ahead of the writer by up to `ahead` groups: for OpenAI as many as keep
        `openai_concurrency` requests in flight (they wait on the network, not on us), for the
        local model one (chunking the next files overlaps the forward pass, which uses every
        core itself). docs/performance.md has the numbers.
        """
        limit = self.settings.ingest_batch_chunks
        ahead = 1
        if self.info.provider == "openai":  # groups in flight x requests per group <= concurrency
            per_group = -(-limit // self.settings.openai_batch_size)
            ahead = max(1, self.settings.openai_concurrency // per_group)
        group: list[_Pending] = []
        queued: deque[tuple[list[_Pending], list[Document], Future[Any]]] = deque()
        writes: deque[Future[None]] = deque()
        prepared = 0
        with (
            ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="rag-embed") as embedder,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-writer") as writer,
        ):
            try:
                for done, item in enumerate(found, start=1):
                    pending = self._prepare(item, report)
                    if pending is not None:
                        group.append(pending)
                        prepared += len(pending.chunks)
                    if group and (sum(len(p.chunks) for p in group) >= limit or done == len(found)):
                        chunks = [c for p in group for c in p.chunks]
                        texts = [c.page_content for c in chunks]
                        queued.append((group, chunks, embedder.submit(self.embeddings.embed_documents, texts)))
                        group = []
                        while len(queued) > ahead:
                            self._hand_over(queued.popleft(), writer, writes, report)
                    if progress:
                        progress(Progress("ingest", done, len(found), prepared + report.skipped,
                                          readable(item.path)))
                while queued:
                    self._hand_over(queued.popleft(), writer, writes, report)
                while writes:
                    writes.popleft().result()
            except BaseException:
                for _, _, embedding in queued:
                    embedding.cancel()
                raise

    def _hand_over(
        self, item: tuple[list[_Pending], list[Document], Future[Any]], writer: ThreadPoolExecutor,
        writes: deque[Future[None]], report: IngestReport,
    ) -> None:
        """Wait for a group's vectors (now in the cache), then queue its write.

        The writer's `index()` call re-embeds through the cache, which answers from a lookup, so
        the provider is called once per chunk. A failed write stops the run at the next hand-over.
        """
        group, chunks, embedding = item
        embedding.result()
        while writes and (writes[0].done() or len(writes) > 1):
            writes.popleft().result()
        writes.append(writer.submit(self._write, group, chunks, report))

    def _prepare(self, item: FoundFile, report: IngestReport) -> _Pending | None:
        """Read, digest, load and chunk one file; None when it is unchanged or bad."""
        try:
            size = item.path.stat().st_size
            if size > self.settings.max_file_bytes:
                raise LoadError(
                    f"file is {size / 1048576:.3g} MB, over the {self.settings.max_file_mb:g} MB cap "
                    "(RAG_MAX_FILE_MB)"
                )
            data = item.path.read_bytes()
        except LoadError as exc:
            report.failed.append((readable(item.path), str(exc)))
            return None
        except OSError as exc:
            report.failed.append((readable(item.path), f"cannot read: {exc.strerror or exc}"))
            return None
        digest = hashlib.blake2b(data, digest_size=20).hexdigest()
        known = self.manifest.get(item.key)
        if known and known.digest == digest and known.fingerprint == self.fingerprint:
            report.files_unchanged += 1
            report.skipped += known.chunks
            return None
        try:
            docs = load(item, data)
            chunks = split_documents(docs, self.settings.chunk_size, self.settings.chunk_overlap)
        except LoadError as exc:
            report.failed.append((readable(item.path), str(exc)))
            return None
        except Exception as exc:  # a parser bug on one hostile file must not stop the others
            report.failed.append((readable(item.path), f"could not parse: {type(exc).__name__}"))
            return None
        for chunk in chunks:
            chunk.metadata = {k: v for k, v in chunk.metadata.items() if v is not None and v != ""}
        report.files_read += 1
        return _Pending(item, digest, chunks)

    def _write(self, group: list[_Pending], chunks: list[Document], report: IngestReport) -> None:
        """Write a group of whole documents: one upsert when it fits Chroma's batch, else parts.

        A document cut across parts is still all-or-nothing: if a part fails, the parts already
        written for this group are deleted again (best effort: a store that is gone cannot be
        asked), the manifest keeps the old digest, and the next run writes the files whole.
        """
        since = self.records.get_time()
        try:
            result = index(
                chunks,
                self.records,
                self.vectors,
                batch_size=max(min(len(chunks), self.max_batch), 1),
                cleanup="incremental",
                source_id_key="path",
                key_encoder="blake2b",
            )
        except BaseException:
            if len(chunks) > self.max_batch:
                self._undo([p.found.key for p in group], since)
            raise
        report.added += result["num_added"]
        report.updated += result["num_updated"]
        report.skipped += result["num_skipped"]
        report.deleted += result["num_deleted"]
        self.manifest.put([
            FileRecord(p.found.key, p.found.source, p.digest, self.fingerprint, len(p.chunks))
            for p in group
        ])
        self.manifest.bump()

    def _drop_aliases(self, found: list[FoundFile]) -> int:
        """Delete documents recorded under another spelling of a file found now (`../en/a.md`,
        a symlinked folder): stores written before paths were resolved held such duplicates."""
        keys = {f.key for f in found}
        aliases = [r.path for r in self.manifest.all()
                   if r.path not in keys and path_key(real(Path(r.path))) in keys]
        return self.delete_paths(aliases)

    def _undo(self, paths: list[str], since: float) -> None:
        """Delete what this run wrote for `paths` after `since` (a group that failed half-way)."""
        try:
            keys = self.records.list_keys(after=since, group_ids=paths)
            self._delete_ids(keys)
            self.records.delete_keys(keys)
        except Exception as exc:  # the store is gone: the re-run replaces these chunks
            log.warning("could not remove a half-written group (%s); re-run the ingest", exc)

    def _delete_ids(self, ids: list[str]) -> None:
        """Delete chunks by id in parts Chroma accepts."""
        for start in range(0, len(ids), self.max_batch):
            self.vectors.delete(ids=ids[start : start + self.max_batch])

    def _prune(self, roots: list[Path], present: set[str]) -> int:
        """Delete documents recorded under the given roots whose files are gone."""
        gone = [
            rec.path
            for root in roots
            for rec in self.manifest.under(path_key(real(root)))
            if rec.path not in present and not Path(rec.path).is_file()
        ]
        return self.delete_paths(gone)

    def delete_paths(self, paths: list[str]) -> int:
        """Remove these files' chunks from the store, the record manager and the manifest."""
        deleted = 0
        for path in paths:
            keys = self.records.list_keys(group_ids=[path])
            if keys:
                self._delete_ids(keys)
                self.records.delete_keys(keys)
                deleted += len(keys)
        if paths:
            self.manifest.remove(paths)
            self.manifest.bump()
        return deleted

    def delete_source(self, source: str) -> int:
        """Delete by the source shown in results or by path; returns chunks deleted."""
        wanted = path_key(real(Path(source)))
        paths = [r.path for r in self.manifest.all() if r.source == source or r.path == wanted]
        if not paths:
            raise LoadError(f"No ingested document has source {source!r} (see `rag stats`).")
        with ingest_lock(self.settings.data_dir):
            return self.delete_paths(paths)


def reset(settings: Settings) -> list[str]:
    """Delete every collection this tool made (eval ones too), its BM25 files and ingest records."""
    import shutil

    with ingest_lock(settings.data_dir):
        chroma = store.client(settings)
        names = store.collection_names(settings, (store.PREFIX, store.EVAL_PREFIX))
        for name in names:
            chroma.delete_collection(name)
        shutil.rmtree(settings.data_dir / "bm25", ignore_errors=True)
        state = StateDB(settings.state_db)
        with state.tx() as db:
            for table in ("records", "files"):
                db.execute(f"DELETE FROM {table}")
            db.execute("UPDATE versions SET version = version + 1")
        state.close()
    return names
