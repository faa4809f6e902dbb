"""What a search returns: hits with every number the UI explains, and the two ways to get them.

`vector_hits` asks Chroma's HNSW index; `fetch_hits` takes chunks by id (what BM25 found) and
computes their cosine from the stored vectors, so every hit carries a comparable `score`
whatever ranked it. Both the searcher and hybrid fusion build on these, and neither imports the
other's module to do so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.embed.providers import EmbeddingInfo
    from rag.retrieve.fusion import Fusion


@dataclass
class Hit:
    """One retrieved chunk with everything the UI explains about it."""

    id: str
    rank: int
    text: str
    metadata: dict[str, Any]
    score: float
    """Cosine similarity between the query and this chunk's vector, whichever index found it."""
    vector: list[float] | None = None
    distance: float | None = None
    """The raw cosine distance Chroma returned, when the hit came from the vector index."""
    bm25_score: float | None = None
    vector_rank: int | None = None
    bm25_rank: int | None = None
    fused_score: float | None = None
    fusion: Fusion | None = None
    """The operands of `fused_score` (hybrid mode), so the sum can be redone by hand."""

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", "?"))

    @property
    def page(self) -> int | None:
        page = self.metadata.get("page")
        return int(page) if page is not None else None

    def as_dict(self, *, with_vector: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rank": self.rank, "source": self.source, "page": self.page,
            "score": round(self.score, 6), "text": self.text,
        }
        if self.bm25_score is not None:
            out["bm25_score"] = round(self.bm25_score, 6)
        if self.fused_score is not None:
            out["fused_score"] = round(self.fused_score, 6)
        for name in ("vector_rank", "bm25_rank"):
            if self.bm25_score is not None and getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.fusion is not None:
            out["fusion"] = self.fusion.as_dict()
        if with_vector and self.vector is not None:
            out["vector"] = self.vector
        return out

    def to_document(self) -> Document:
        return Document(
            id=self.id, page_content=self.text,
            metadata={**self.metadata, "score": self.score, "rank": self.rank},
        )


@dataclass
class SearchResult:
    query: str
    query_vector: list[float]
    hits: list[Hit]
    mode: str
    embedding: EmbeddingInfo
    timings_ms: dict[str, float] = field(default_factory=dict)


def vector_hits(
    collection: Collection, query_vector: list[float], n: int,
    where: dict[str, Any] | None = None,
) -> list[Hit]:
    """Nearest chunks by cosine distance, straight from Chroma's HNSW index."""
    result = collection.query(
        query_embeddings=[query_vector],
        n_results=n,
        where=where,
        include=["documents", "metadatas", "distances", "embeddings"],
    )
    hits = []
    for rank, (id_, text, meta, dist, vec) in enumerate(
        zip(result["ids"][0], result["documents"][0], result["metadatas"][0],
            result["distances"][0], result["embeddings"][0], strict=True),
        start=1,
    ):
        hits.append(Hit(id=id_, rank=rank, text=text or "", metadata=dict(meta or {}),
                        score=1.0 - float(dist), vector=np.asarray(vec).tolist(),
                        distance=float(dist), vector_rank=rank))
    return hits


def fetch_hits(collection: Collection, ids: list[str], query_vector: list[float]) -> list[Hit]:
    """Chunks by id, in the given order, with their stored vectors and cosine to the query."""
    if not ids:
        return []
    got = collection.get(ids=ids, include=["documents", "metadatas", "embeddings"])
    found = {
        id_: (text, meta, vec)
        for id_, text, meta, vec in zip(got["ids"], got["documents"], got["metadatas"],
                                        got["embeddings"], strict=True)
    }
    query = np.asarray(query_vector, dtype=np.float64)
    qnorm = float(np.linalg.norm(query)) or 1.0
    hits = []
    for id_ in ids:
        if id_ not in found:  # deleted between the index build and now
            continue
        text, meta, vec = found[id_]
        vector = np.asarray(vec, dtype=np.float64)
        cosine = float(vector @ query) / ((float(np.linalg.norm(vector)) or 1.0) * qnorm)
        hits.append(Hit(id=id_, rank=0, text=text or "", metadata=dict(meta or {}), score=cosine,
                        vector=vector.tolist()))
    return hits
