"""What is in the store, document by document: the Documents page and its actions read through here.

Documents are listed from the chunks' own metadata in Chroma (source, path, type, pages, chunk
numbers, garbled-page flags), so the list is what retrieval can actually find; when each file was
ingested comes from the store's manifest, and its size from the file where it still is. The page's
actions go through the same `Ingestor` as `rag ingest` and `rag delete`. This is the one place the
UI asks these questions, so it can follow changes in how the store records documents.
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

_PAGE = 5000
"""Metadata read from Chroma per request, so a large collection is listed in bounded pieces."""


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


def _metadatas(coll: Collection, where: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    offset = 0
    while True:
        got = coll.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
        out.extend(zip(got["ids"], [dict(m or {}) for m in got["metadatas"]], strict=True))
        if len(got["ids"]) < _PAGE:
            return out
        offset += _PAGE


def _ingested_at(settings: Settings, namespace: str) -> dict[str, float]:
    """When each finished file was last written, from the store's manifest (the writer's clock)."""
    from rag.state import Manifest

    return {r.path: r.at for r in Manifest(settings, namespace).all() if r.done and r.at}


def list_documents(settings: Settings, info: EmbeddingInfo | None = None) -> list[DocumentInfo]:
    """Every document of the current model's collection, by source name."""
    coll, info = _collection(settings, info)
    if coll is None:
        return []
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, meta in _metadatas(coll):
        grouped[str(meta.get("path") or meta.get("source", "?"))].append(meta)
    when = _ingested_at(settings, info.collection_name)
    docs = []
    for path, metas in grouped.items():
        first = metas[0]
        file = Path(path)
        pages = max((int(m.get("pages") or 0) for m in metas), default=0) or None
        docs.append(DocumentInfo(
            source=str(first.get("source", file.name)), path=path,
            type=str(first.get("type") or file.suffix.lstrip(".").lower()), chunks=len(metas),
            model=f"{info.model} ({info.dims})", size=file.stat().st_size if file.is_file() else None,
            pages=pages, ingested_at=when.get(path), flags=page_flags(metas, pages),
        ))
    return sorted(docs, key=lambda d: d.source)


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
