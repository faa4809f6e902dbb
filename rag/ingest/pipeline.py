"""Idempotent ingest: files in, chunks embedded and stored, each document whole or not at all.

The pipeline per run: catch up with the store (another process may have written); discover files;
skip those the store's manifest records as done with the same content digest (no read, no
chunking, no embedding) unless the store lost their chunks; load and chunk the rest; group whole
documents into batches; embed a batch while the previous one is written; write through
LangChain's `index()` with a record manager answered by the store, bracketed by the manifest's
`writing` and `done` records (`rag.state`), so a killed run is finished, and its orphans swept by
path, by the next. A bad file is reported and skipped; a provider failure stops the run without
leaving half a document unrecorded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
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
from rag.embed.providers import EmbeddingInfo, get_embeddings, resolve
from rag.errors import BusyError, LoadError
from rag.ingest import quality
from rag.ingest.chunking import split_documents
from rag.ingest.loaders import FoundFile, Skipped, discover, load
from rag.ingest.paths import path_key, readable, real
from rag.progress import Progress, ProgressFn
from rag.state import WRITING, FileRecord, Manifest, StoreRecordManager, store_counts

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1
_VERIFY_EACH = 200
"""Runs over at most this many files check each file's chunk count in the store (cheap for a few
files); larger runs compare one count with the manifest's sum, and go per file only if short."""


@dataclass
class IngestReport:
    """What a run did, in the shape `rag ingest --json` prints."""

    embedding: EmbeddingInfo
    collection: str
    files_read: int = 0
    files_unchanged: int = 0
    files_unsupported: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    flagged: list[tuple[str, quality.Flag]] = field(default_factory=list)
    """Ingested files whose text looks garbled on some page (or a page has no text layer)."""
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
                "flagged": [{"path": p, "page": f.page, "reason": f.reason} for p, f in self.flagged],
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


def chunk_id(chunk: Document) -> str:
    """A chunk's id in the store: a hash of its text and metadata (path, position, heading).

    The same file ingested by any process or machine gets the same ids, so `index()` (and
    `_not_stored`) can ask the store whether a chunk is there before embedding it.
    """
    payload = json.dumps([chunk.page_content, chunk.metadata], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


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
        namespace = self.info.collection_name
        store.catch_up(settings, namespace)
        self.manifest = Manifest(settings, namespace)
        self.vectors = store.vector_store(settings, self.info, self.embeddings)
        self.max_batch = store.client(settings).get_max_batch_size()
        """Chroma refuses larger writes (5,461 embedded): a bigger document is written in parts."""
        self.records = StoreRecordManager(namespace, lambda: self.vectors._collection)
        self._known: dict[str, FileRecord] = {}
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
            self._catch_up()
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
            self._known = self._reconciled([f.key for f in found])
            self._run(found, report, progress)
            if prune:
                report.deleted += self._prune(paths, {f.key for f in found})
        report.seconds = time.perf_counter() - started
        return report

    def _not_stored(self, chunks: list[Document]) -> list[str]:
        """Texts of the chunks the store does not hold yet: only those are worth embedding ahead.

        A file whose record was lost (a fresh data dir's empty cache, a reset cut short) is
        read again, but its chunks already in the store cost one id lookup, not an embedding.
        """
        present = self.records.exists([chunk_id(c) for c in chunks])
        return [c.page_content for c, there in zip(chunks, present, strict=True) if not there]

    def _catch_up(self) -> None:
        """Under the lock: if another process wrote since we opened the store, reopen our handles,
        so this run writes on top of what is really there (an embedded index reloaded from disk)."""
        before = store._known.get((store.store_key(self.settings), self.info.collection_name))
        if store.catch_up(self.settings, self.info.collection_name) != before:
            self.vectors = store.vector_store(self.settings, self.info, self.embeddings)
            self.manifest = Manifest(self.settings, self.info.collection_name)

    def _reconciled(self, paths: list[str]) -> dict[str, FileRecord]:
        """The manifest's records of `paths`, less those whose chunks the store no longer holds.

        A few files (an upload, a re-run on one folder) are checked one by one: their chunks
        counted in the store against their records, so a file with chunks missing, or extra
        ones, is ingested again. For many files that costs a read of every chunk's metadata, so
        one count is compared with the manifest's sum first, and files are counted only when the
        store holds fewer chunks than the finished records promise (a reset killed half-way,
        another store, chunks deleted by another tool).
        """
        chunks = self.vectors._collection
        if len(paths) <= _VERIFY_EACH:  # a few files (an upload): check each one's count, exactly
            known = self.manifest.get_many(paths)
        else:
            records = self.manifest.all()
            known = {r.path: r for r in records}
            if chunks.count() >= sum(r.chunks for r in records if r.done):
                return known
        done = [p for p in paths if p in known and known[p].done]
        held = store_counts(chunks, done)
        short = {p for p in done if held[p] != known[p].chunks}
        return {p: r for p, r in known.items() if p not in short}

    def reindex(self, path: Path, source: str, *, progress: ProgressFn | None = None,
                lock_wait_s: float = 60.0) -> IngestReport:
        """Read one ingested file again (today's loaders and chunk settings) under its source name.

        No manifest record is consulted, so the unchanged-file shortcut does not apply; chunks
        whose text and metadata come out the same are still skipped by the record manager.
        """
        started = time.perf_counter()
        report = IngestReport(self.info, self.info.collection_name)
        path = real(path)
        root, text = path, path.as_posix()
        if source != path.name and text.endswith("/" + source):
            root = Path(text[: -len(source) - 1])
        with ingest_lock(self.settings.data_dir, lock_wait_s):
            self._catch_up()
            self._known = {}
            self._run([FoundFile(path, root)], report, progress)
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
                        texts = self._not_stored(chunks)
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
        known = self._known.get(item.key)
        if known and known.done and known.digest == digest and known.fingerprint == self.fingerprint:
            report.files_unchanged += 1
            report.skipped += known.chunks
            return None
        try:
            docs = load(item, data)
            suffix = item.path.suffix.lower()
            flags = quality.check(docs, text_layer=suffix == ".pdf")
            chunks = split_documents(docs, self.settings.chunk_size, self.settings.chunk_overlap)
        except LoadError as exc:
            report.failed.append((readable(item.path), str(exc)))
            return None
        except Exception as exc:  # a parser bug on one hostile file must not stop the others
            report.failed.append((readable(item.path), f"could not parse: {type(exc).__name__}"))
            return None
        about = {"type": suffix.lstrip(".")}
        for chunk in chunks:  # only facts that do not change with an edit: chunk ids stay stable
            meta = {k: v for k, v in chunk.metadata.items() if v is not None and v != ""}
            chunk.metadata = {**about, **meta}
        report.flagged.extend((str(item.path), flag) for flag in flags)
        report.files_read += 1
        return _Pending(item, digest, chunks)

    def _write(self, group: list[_Pending], chunks: list[Document], report: IngestReport) -> None:
        """Intent, chunks, commit; one upsert when the group fits Chroma's batch, else parts.

        The manifest says `writing` before any chunk lands and `done` only after the file's stale
        chunks are gone, so no kill leaves chunks no record names. A document cut across parts is
        still all-or-nothing: if a part fails, the parts already written for this group are
        deleted again (best effort: a store that is gone cannot be asked), and the next run
        writes the files whole.
        """
        self.manifest.put([
            FileRecord(p.found.key, p.found.source, p.digest, self.fingerprint, len(p.chunks), WRITING)
            for p in group
        ])
        since = self.records.get_time()
        try:
            result = index(
                chunks,
                self.records,
                self.vectors,
                batch_size=max(min(len(chunks), self.max_batch), 1),
                cleanup="incremental",
                source_id_key="path",
                key_encoder=chunk_id,
            )
        except BaseException:
            if len(chunks) > self.max_batch:
                self._undo([p.found.key for p in group], since)
            raise
        report.added += result["num_added"]
        report.updated += result["num_updated"]
        report.skipped += result["num_skipped"]
        report.deleted += result["num_deleted"]
        self.manifest.put([_finished(p, self.fingerprint) for p in group])

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
        """Remove these files' chunks (every chunk stored under their path) and their records.

        The records are marked `writing` first, so a delete killed half-way is finished by the
        next `--prune` or delete rather than leaving records that promise missing chunks.
        """
        if not paths:
            return 0
        known = self.manifest.get_many(paths)
        self.manifest.put([
            FileRecord(p, r.source, r.digest, r.fingerprint, r.chunks, WRITING) for p, r in known.items()
        ])
        deleted = 0
        for start in range(0, len(paths), 100):
            part = paths[start : start + 100]
            keys = self.records.list_keys(group_ids=part)
            if keys:
                self._delete_ids(keys)
                self.records.delete_keys(keys)
                deleted += len(keys)
        self.manifest.remove(paths)
        return deleted

    def delete_source(self, source: str) -> int:
        """Delete by the source shown in results or by path; returns chunks deleted."""
        wanted = path_key(real(Path(source)))
        paths = [r.path for r in self.manifest.find(source, wanted)]
        if not paths:
            raise LoadError(f"No ingested document has source {source!r} (see `rag stats`).")
        with ingest_lock(self.settings.data_dir):
            self._catch_up()
            return self.delete_paths(paths)


def _finished(pending: _Pending, fingerprint: str) -> FileRecord:
    """A written file's `done` record, with what the Documents page lists (type, pages, flags),
    so listing documents reads these records, not every chunk."""
    from rag.documents import describe

    about = describe([c.metadata for c in pending.chunks], pending.found.key)
    return FileRecord(pending.found.key, pending.found.source, pending.digest, fingerprint,
                      len(pending.chunks), type=about.type, pages=about.pages, flags="\n".join(about.flags))


def reset(settings: Settings) -> list[str]:
    """Delete every collection this tool made (eval ones too), their manifests and BM25 files.

    Manifests go first: a reset killed half-way leaves chunks no record promises (the next ingest
    finds every file changed, re-adds nothing it already holds, and sweeps the rest by path),
    never records promising chunks that are gone.
    """
    import shutil

    with ingest_lock(settings.data_dir):
        chroma = store.client(settings)
        names = store.collection_names(settings, (store.PREFIX, store.EVAL_PREFIX))
        for name in store.collection_names(settings, (store.MANIFEST_PREFIX,)):
            chroma.delete_collection(name)
        for name in names:
            chroma.delete_collection(name)
        shutil.rmtree(settings.data_dir / "bm25", ignore_errors=True)
    return names
