"""What is in the store, document by document: the Documents page and its actions read through here.

Documents are listed from the store's manifest: one record per file, which an ingest writes with
what the list shows (source, type, pages, chunk count, problem flags, when). So listing costs one
bounded read of records, never a read of every chunk (8 s at 50,000 chunks, minutes at a million):
a store of up to `LISTED` files is listed whole, a larger one a part of it, narrowed by name in
the store. A record written before records carried this (`FileRecord.described`) is described
from its own chunks, read by path for the files listed only. A file's size comes from the file
where it still is. The page's actions go through the same `Ingestor` as `rag ingest` and `rag
delete`. This is the one place the UI asks these questions, so it can follow changes in how the
store records documents.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import LoadError

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.embed.providers import EmbeddingInfo
    from rag.ingest.pipeline import IngestReport
    from rag.progress import ProgressFn
    from rag.state import FileRecord

LISTED = 500
"""Documents listed at once: a store of more lists this many (narrowed by name in the store), so
a page costs one read of this many records, and of their chunks' metadata for old records."""
_PATHS_PER_READ = 100


@dataclass
class DocumentInfo:
    source: str
    path: str
    type: str
    chunks: int
    model: str
    size: int | None = None
    """Bytes of the file where it was ingested from, None when it is no longer there."""
    pages: int | None = None
    ingested_at: float | None = None
    flags: list[str] = field(default_factory=list)
    """`page 3: no text layer …`, one per problem found in the extracted text."""


@dataclass
class ChunkView:
    id: str
    text: str
    chunk: int
    page: int | None
    start: int
    tokens: int | None
    heading: str
    garbled: str
    ocr: bool


def _collection(settings: Settings, info: EmbeddingInfo | None) -> tuple[Collection | None, EmbeddingInfo]:
    from rag import store
    from rag.embed.providers import resolve

    info = info or resolve(settings)
    try:
        return store.collection(settings, info, create=False), info
    except Exception:  # no collection yet: nothing ingested with this model
        return None, info


@dataclass
class DocumentList:
    docs: list[DocumentInfo]
    """Sorted by source: every document whose name contains the filter, or a part of them."""
    total: int
    """Documents in the store, whatever the filter."""
    complete: bool
    """False when more documents match than `docs` holds (a large store: narrow by name)."""
    store_filter: bool = False
    """The filter was applied by the store (a large store): exact case, anywhere in the path."""


@dataclass(frozen=True)
class Description:
    """What the list shows of a file beyond its record's basics, derived from its chunks."""

    type: str
    pages: int
    flags: list[str]


def describe(metas: list[dict[str, Any]], path: str) -> Description:
    """A file's type, page count and problem flags from its chunks' metadata: what an ingest
    writes into the file's record, and what the list derives for a record written without them."""
    pages = max((int(m.get("pages") or 0) for m in metas), default=0)
    kind = next((str(m["type"]) for m in metas if m.get("type")), "") or Path(path).suffix.lstrip(".").lower()
    return Description(kind, pages, page_flags(metas, pages or None))


_LISTS: dict[tuple[Any, ...], DocumentList] = {}
"""Lists already read, per (store, collection, write version, filter): a Streamlit rerun (any
click on the page) costs one read of the version, not of the records."""


def list_documents(settings: Settings, info: EmbeddingInfo | None = None, *, contains: str = "",
                   limit: int = LISTED) -> DocumentList:
    """The current model's documents whose source contains `contains` (all when empty), by source.

    A store of at most `limit` files is read whole and filtered here (any case); a larger one
    lists the first `limit` records, or those whose path contains `contains` (the store's own
    filter, exact case).
    """
    from rag import store
    from rag.state import Manifest

    coll, info = _collection(settings, info)
    if coll is None:
        return DocumentList([], 0, True)
    manifest = Manifest(settings, info.collection_name)
    key = (store.store_key(settings), info.collection_name, manifest.version(), contains, limit)
    if (cached := _LISTS.get(key)) is not None:
        return cached
    total = manifest.live_count()
    if total <= limit:
        wanted = contains.strip().lower()
        records = [r for r in manifest.page(limit) if wanted in r.source.lower()]
        listed = DocumentList(_infos(coll, info, records), total, True)
    else:
        records = manifest.page(limit, contains.strip())
        listed = DocumentList(_infos(coll, info, records), total, len(records) < limit, bool(contains.strip()))
    if len(_LISTS) > 32:
        _LISTS.clear()
    _LISTS[key] = listed
    return listed


def _infos(coll: Collection, info: EmbeddingInfo, records: list[FileRecord]) -> list[DocumentInfo]:
    """The listed records as rows; records without a description get one from their chunks."""
    derived = _described_from_chunks(coll, [r.path for r in records if not r.described])
    docs = []
    for r in records:
        about = Description(r.type, r.pages, r.flags.split("\n") if r.flags else []) if r.described \
            else derived.get(r.path, describe([], r.path))
        file = Path(r.path)
        docs.append(DocumentInfo(
            source=r.source, path=r.path, type=about.type, chunks=r.chunks, model=f"{info.model} ({info.dims})",
            size=file.stat().st_size if file.is_file() else None, pages=about.pages or None,
            ingested_at=r.at if r.done and r.at else None, flags=about.flags,
        ))
    return sorted(docs, key=lambda d: (d.source, d.path))


def _described_from_chunks(coll: Collection, paths: list[str]) -> dict[str, Description]:
    """Descriptions of these files from their chunks' metadata: a filtered read per 100 paths."""
    from concurrent.futures import ThreadPoolExecutor

    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    groups = [paths[i:i + _PATHS_PER_READ] for i in range(0, len(paths), _PATHS_PER_READ)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # a server answers them side by side
        for got in pool.map(lambda g: coll.get(where={"path": {"$in": g}}, include=["metadatas"]), groups):
            for meta in got["metadatas"] or []:
                grouped[str((meta or {}).get("path"))].append(dict(meta or {}))
    return {p: describe(grouped.get(p, []), p) for p in paths}


def page_flags(metas: list[dict[str, Any]], pages: int | None) -> list[str]:
    """Garbled-text reasons by page, and pages with no text at all (a PDF page without a layer)."""
    from rag.ingest.quality import Flag

    flags: dict[tuple[int, str], None] = {}
    seen: set[int] = set()
    for meta in metas:
        page = meta.get("page")
        if page is not None:
            seen.add(int(page))
        for reason in str(meta.get("garbled") or "").split("; "):
            if reason:
                flags[(int(page or 0), reason)] = None
    out = [str(Flag(page or None, reason)) for page, reason in sorted(flags)]
    if pages and any(m.get("type") == "pdf" for m in metas):
        out += [str(Flag(p, "no text layer (scanned image?)")) for p in range(1, pages + 1) if p not in seen]
    return out


def document_chunks(settings: Settings, path: str, info: EmbeddingInfo | None = None) -> list[ChunkView]:
    """One document's chunks in reading order (page, then offset)."""
    coll, _ = _collection(settings, info)
    if coll is None:
        return []
    got = coll.get(where={"path": path}, include=["documents", "metadatas"])
    chunks = [
        ChunkView(id_, text or "", int(m.get("chunk", 0)), int(m["page"]) if m.get("page") is not None else None,
                  int(m.get("start", 0)), int(m["tokens"]) if m.get("tokens") is not None else None,
                  str(m.get("heading") or ""), str(m.get("garbled") or ""), bool(m.get("ocr")))
        for id_, text, m in zip(got["ids"], got["documents"], [dict(x or {}) for x in got["metadatas"]],
                                strict=True)
    ]
    return sorted(chunks, key=lambda c: (c.page or 0, c.chunk))


def page_text(chunks: list[ChunkView]) -> list[tuple[int, str]]:
    """The extracted text of one page rebuilt from its overlapping chunks, with where each starts.

    Returns (chunk number, text it adds) in order: a chunk's overlap with the one before it is not
    repeated, so joining the pieces gives the page's text once, and each piece begins exactly where
    its chunk begins (or where the overlap ends, when the chunk starts inside the previous one).
    """
    pieces: list[tuple[int, str]] = []
    end = -1
    for c in sorted(chunks, key=lambda c: (c.start, c.chunk)):
        if end < 0 or c.start >= end:
            pieces.append((c.chunk, c.text))
        else:
            pieces.append((c.chunk, c.text[end - c.start:] if end - c.start < len(c.text) else ""))
        end = max(end, c.start + len(c.text))
    return pieces


def delete_document(settings: Settings, path: str) -> int:
    """Remove a document's chunks and records, as `rag delete` does; returns chunks deleted."""
    from rag.ingest.pipeline import Ingestor

    return Ingestor(settings).delete_source(path)


def reindex_document(settings: Settings, doc: DocumentInfo, progress: ProgressFn | None = None) -> IngestReport:
    """Read the file again with today's loaders and chunk settings, keeping its source name."""
    from rag.ingest.pipeline import Ingestor

    if not Path(doc.path).is_file():
        raise LoadError(f"{doc.source} is no longer at {doc.path}.", "Upload it again or restore the file.")
    return Ingestor(settings).reindex(Path(doc.path), doc.source, progress=progress)
