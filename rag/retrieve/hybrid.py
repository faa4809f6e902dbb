"""Keyword (BM25) and hybrid retrieval: candidates from both indexes, fused into one ranking.

Hybrid takes the top `hybrid_candidates` of the vector index and of BM25, then scores every
candidate on both sides (its real cosine similarity, fetched vectors included, and its real BM25
score), so a chunk found by one index is not punished for being missing from the other list.
The default fusion is a weighted sum of min-max normalised scores with a vector weight that
belongs to the embedding model (0.2 for USE, tuned on the dev sets), which on the dev sets beat plain and weighted reciprocal rank
fusion (figures in the README); RRF stays available as `hybrid_fusion=rrf`.
Every hit carries its cosine similarity in `score`, whatever ranked it. Vector search alone
lives in `rag.retrieve.searcher`, the BM25 index in `rag.retrieve.bm25`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import Settings
from rag.embeddings import EmbeddingInfo, fusion_weights
from rag.lang import is_japanese
from rag.retrieve import bm25

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.retrieve.searcher import Hit, Searcher


def hybrid_hits(
    searcher: Searcher,
    query: str,
    query_vector: list[float],
    n: int,
    mode: str,
    where: dict[str, Any] | None = None,
) -> list[Hit]:
    """The best `n` chunks by BM25 (`mode="bm25"`) or by fused BM25 and vector evidence."""
    settings = searcher.settings
    index = bm25.index_for(settings, searcher.collection)
    allowed = bm25.allowed_rows(index, searcher.collection, where)
    scores = index.scores(query)
    if mode == "bm25":
        top = index.top_of(scores, n, allowed)
        score_of = {index.ids[row]: score for row, score in top}
        hits = fetch_hits(searcher.collection, list(score_of), query_vector)
        for rank, hit in enumerate(hits, start=1):
            hit.rank = hit.bm25_rank = rank
            hit.bm25_score = score_of[hit.id]
        return hits
    if mode != "hybrid":
        raise ValueError(f"unknown retrieval mode {mode!r}")

    pool = max(settings.hybrid_candidates, n)
    candidates = candidate_pool(searcher, index, scores, query_vector, pool, allowed, where)
    if not candidates:
        return []
    query_is_japanese = is_japanese(query)
    fused = fuse(
        np.array([h.score for h in candidates]),
        np.array([h.bm25_score for h in candidates]),
        np.array([h.vector_rank or 0 for h in candidates]),
        np.array([h.bm25_rank or 0 for h in candidates]),
        settings,
        cross_script=np.array([is_japanese(h.text) != query_is_japanese for h in candidates]),
        info=searcher.info,
    )
    for hit, value in zip(candidates, fused, strict=True):
        hit.fused_score = float(value)
    candidates.sort(key=lambda h: (-(h.fused_score or 0.0), h.vector_rank or pool + 1))
    for rank, hit in enumerate(candidates[:n], start=1):
        hit.rank = rank
    return candidates[:n]


def candidate_pool(
    searcher: Searcher,
    index: bm25.BM25Index,
    scores: np.ndarray,
    query_vector: list[float],
    pool: int,
    allowed: np.ndarray | None,
    where: dict[str, Any] | None,
) -> list[Hit]:
    """The union of both indexes' top `pool`, each hit with its cosine, BM25 score and ranks."""
    by_vector = searcher.vector_hits(query_vector, pool, where)
    by_bm25 = index.top_of(scores, pool, allowed)
    hits = {h.id: h for h in by_vector}
    missing = [index.ids[row] for row, _ in by_bm25 if index.ids[row] not in hits]
    for hit in fetch_hits(searcher.collection, missing, query_vector):
        hits[hit.id] = hit
    for rank, (row, _) in enumerate(by_bm25, start=1):
        if index.ids[row] in hits:
            hits[index.ids[row]].bm25_rank = rank
    for hit in hits.values():
        row = index.rows.get(hit.id)
        hit.bm25_score = float(scores[row]) if row is not None else 0.0
    return list(hits.values())


def fuse(
    cosine: np.ndarray,
    bm25_scores: np.ndarray,
    vector_rank: np.ndarray,
    bm25_rank: np.ndarray,
    settings: Settings,
    cross_script: np.ndarray | None = None,
    info: EmbeddingInfo | None = None,
) -> np.ndarray:
    """One fused score per candidate (higher is better); ranks are 1-based, 0 = not in that list.

    A candidate in the other script than the query (a Japanese chunk for an English question)
    cannot share words with it, so BM25's zero says nothing: with `cross_script` such candidates
    are credited the cross-script weight of their vector evidence in place of BM25, which is
    how a multilingual model is meant to be used. Monolingual collections are unaffected.

    `score`: w * min-max(cosine) + (1 - w) * min-max(BM25), both scaled over this query's
    candidates, so neither scale (cosines bunched near 0.3, BM25 unbounded) dominates by accident.
    `rrf`: w / (k + vector rank) + (1 - w) / (k + BM25 rank), a missing rank adding nothing.
    The weights belong to the embedding model behind `info` (`rag.embeddings.fusion_weights`);
    the RAG_HYBRID_* settings override them when set.
    """
    w, cross_weight = fusion_weights(settings, info)
    if settings.hybrid_fusion == "rrf":
        k = settings.hybrid_rrf_k
        v = np.where(vector_rank > 0, 1.0 / (k + vector_rank), 0.0)
        b = np.where(bm25_rank > 0, 1.0 / (k + bm25_rank), 0.0)
        return w * v + (1 - w) * b
    vector, lexical = minmax(cosine), minmax(bm25_scores)
    if cross_script is not None:
        lexical = np.where(cross_script, cross_weight * vector, lexical)
    return w * vector + (1 - w) * lexical


def minmax(values: np.ndarray) -> np.ndarray:
    """0 for the lowest value, 1 for the highest; all ones when they are all equal."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.ones_like(values, dtype=np.float64)
    return (values - low) / (high - low)


def fetch_hits(collection: Collection, ids: list[str], query_vector: list[float]) -> list[Hit]:
    """Chunks by id, in the given order, with their stored vectors and cosine to the query."""
    from rag.retrieve.searcher import Hit

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
