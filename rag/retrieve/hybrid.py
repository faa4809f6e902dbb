"""Keyword (BM25) and hybrid retrieval: candidates from both indexes, fused into one ranking.

Hybrid takes the top `hybrid_candidates` of the vector index and of BM25, then scores every
candidate on both sides (its real cosine similarity, fetched vectors included, and its real BM25
score), so a chunk found by one index is not punished for being missing from the other list.
The default fusion is a weighted sum of min-max normalised scores with a vector weight that
belongs to the embedding model (e5 0.6, USE 0.2: `rag.embed.providers.OFFLINE_MODELS`), which on the
dev sets beat plain and weighted reciprocal rank fusion for both models (figures in the README);
RRF stays available as `hybrid_fusion=rrf`.
Every hit carries its cosine similarity in `score`, whatever ranked it. Vector search alone
lives in `rag.retrieve.hits`, the BM25 index in `rag.retrieve.bm25`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import Settings
from rag.embed.providers import EmbeddingInfo, fusion_weights
from rag.lang import is_japanese
from rag.retrieve import bm25
from rag.retrieve.fusion import Fusion
from rag.retrieve.hits import Hit, fetch_hits, vector_hits

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


def hybrid_hits(
    settings: Settings,
    collection: Collection,
    query: str,
    query_vector: list[float],
    n: int,
    mode: str,
    where: dict[str, Any] | None = None,
    info: EmbeddingInfo | None = None,
) -> list[Hit]:
    """The best `n` chunks by BM25 (`mode="bm25"`) or by fused BM25 and vector evidence;
    `info` names the embedding model whose fusion weights apply."""
    index = bm25.index_for(settings, collection)
    allowed = bm25.allowed_rows(index, collection, where)
    scores = index.scores(query)
    if mode == "bm25":
        top = index.top_of(scores, n, allowed)
        score_of = {index.ids[row]: score for row, score in top}
        hits = fetch_hits(collection, list(score_of), query_vector)
        for rank, hit in enumerate(hits, start=1):
            hit.rank = hit.bm25_rank = rank
            hit.bm25_score = score_of[hit.id]
        return hits
    if mode != "hybrid":
        raise ValueError(f"unknown retrieval mode {mode!r}")

    pool = max(settings.hybrid_candidates, n)
    candidates = candidate_pool(collection, index, scores, query_vector, pool, allowed, where)
    if not candidates:
        return []
    query_is_japanese = is_japanese(query)
    cross_script = np.array([is_japanese(h.text) != query_is_japanese for h in candidates])
    fusions = fusion_terms(
        np.array([h.score for h in candidates]),
        np.array([h.bm25_score for h in candidates]),
        np.array([h.vector_rank or 0 for h in candidates]),
        np.array([h.bm25_rank or 0 for h in candidates]),
        settings,
        cross_script=cross_script,
        info=info,
    )
    for hit, fusion in zip(candidates, fusions, strict=True):
        hit.fused_score, hit.fusion = fusion.fused, fusion
    crossing = {h.id for h, cross in zip(candidates, cross_script, strict=True) if cross}
    candidates.sort(key=lambda h: (-(h.fused_score or 0.0), h.vector_rank or pool + 1))
    rare = {row for row in rare_match_rows(index, query) if index.ids[row] in crossing}
    top = keep_rare_match(candidates, n, rare, index.rows)
    for rank, hit in enumerate(top, start=1):
        hit.rank = rank
    return top


def keep_rare_match(ranked: list[Hit], n: int, rare: set[int], rows: dict[str, int]) -> list[Hit]:
    """The first `n` of `ranked`, with the best of the `rare` rows among them.

    A code, an ID or a product name in the other script's chunks ("0x3FA2" in a Japanese manual)
    matched exactly is the strongest evidence keyword search has, and the one the cross-script
    credit could drown: fusion may rank it below chunks only close in meaning, but never out of
    the answer; if it fell past `n`, it takes the last place.
    """
    top = ranked[:n]
    if not rare or not top:
        return top
    matches = [h for h in ranked if rows.get(h.id) in rare]
    if matches and not any(h in top for h in matches):
        best = max(matches, key=lambda h: h.bm25_score or 0.0)
        top = [*top[: n - 1], best]
    return top


RARE_SHARE = 0.01
"""A query term held by at most this share of the chunks (and at least by one) is rare."""


def rare_match_rows(index: bm25.BM25Index, query: str, share: float = RARE_SHARE) -> set[int]:
    """Rows holding a rare term of `query`: an exact match of a code, an ID or a product name.

    Rarity is the term's document frequency in this collection (at most `share` of the chunks,
    or one chunk in a small collection), so "0x3FA2" is rare and "the" or "what" are not.
    """
    n = len(index)
    if not n:
        return set()
    limit = max(1, int(share * n))
    rows: set[int] = set()
    for term in set(index.tokenizer(query)):
        found = index.rows_holding(term, limit)
        if found is not None:
            rows.update(found.tolist())
    return rows


def candidate_pool(
    collection: Collection,
    index: bm25.BM25Index,
    scores: np.ndarray,
    query_vector: list[float],
    pool: int,
    allowed: np.ndarray | None,
    where: dict[str, Any] | None,
) -> list[Hit]:
    """The union of both indexes' top `pool`, each hit with its cosine, BM25 score and ranks."""
    by_vector = vector_hits(collection, query_vector, pool, where)
    by_bm25 = index.top_of(scores, pool, allowed)
    hits = {h.id: h for h in by_vector}
    missing = [index.ids[row] for row, _ in by_bm25 if index.ids[row] not in hits]
    for hit in fetch_hits(collection, missing, query_vector):
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
    usually cannot share words with it, so BM25's zero says nothing: with `cross_script` such
    candidates are credited the cross-script weight of their vector evidence where that is more
    than their own BM25 evidence, which is how a multilingual model is meant to be used. That
    evidence is min-max scaled among the other-script candidates only: a multilingual model's
    cosines across languages sit below those within one (e5's do), so the best Japanese chunk for
    an English question earns the credit the best keyword match earns on the other side. The
    credit is a floor, never a replacement: "0x3FA2" in a Japanese manual keeps its BM25 score
    (replaced, hybrid lost 13 of 40 such codes that BM25 found). Monolingual collections are
    unaffected.

    `score`: w * min-max(cosine) + (1 - w) * min-max(BM25), both scaled over this query's
    candidates, so neither scale (cosines bunched near 0.3, BM25 unbounded) dominates by accident.
    `rrf`: w / (k + vector rank) + (1 - w) / (k + BM25 rank), a missing rank adding nothing.
    The weights belong to the embedding model behind `info` (`rag.embed.providers.fusion_weights`);
    the RAG_HYBRID_* settings override them when set.
    """
    fusions = fusion_terms(cosine, bm25_scores, vector_rank, bm25_rank, settings, cross_script, info)
    return np.array([f.fused for f in fusions], dtype=np.float64)


def fusion_terms(
    cosine: np.ndarray,
    bm25_scores: np.ndarray,
    vector_rank: np.ndarray,
    bm25_rank: np.ndarray,
    settings: Settings,
    cross_script: np.ndarray | None = None,
    info: EmbeddingInfo | None = None,
) -> list[Fusion]:
    """`fuse`'s arithmetic with every operand kept, one `Fusion` per candidate (see `fuse`)."""
    w, cross_weight = fusion_weights(settings, info)
    n = len(cosine)
    if settings.hybrid_fusion == "rrf":
        k = settings.hybrid_rrf_k
        v = np.where(vector_rank > 0, 1.0 / (k + vector_rank), 0.0)
        b = np.where(bm25_rank > 0, 1.0 / (k + bm25_rank), 0.0)
        fused = w * v + (1 - w) * b
        return [
            Fusion("rrf", w, float(cosine[i]), float(bm25_scores[i]), float(v[i]), float(b[i]),
                   float(fused[i]), rrf_k=k, vector_rank=int(vector_rank[i]),
                   bm25_rank=int(bm25_rank[i]), candidates=n)
            for i in range(n)
        ]
    cross = np.zeros(n, dtype=bool) if cross_script is None else np.asarray(cross_script, dtype=bool)
    vector, lexical = minmax(cosine), minmax(bm25_scores)
    cross_norm = np.zeros(n)
    cross_bounds: dict[str, float] = {}
    if cross.any():
        lexical = lexical.copy()
        cross_norm[cross] = minmax(cosine[cross])
        # a floor, never a replacement: a real keyword match ("0x3FA2") keeps its own evidence
        lexical[cross] = np.maximum(cross_weight * cross_norm[cross], lexical[cross])
        cross_bounds = dict(cross_cosine_min=float(cosine[cross].min()),
                            cross_cosine_max=float(cosine[cross].max()))
    fused = w * vector + (1 - w) * lexical
    bounds = dict(cosine_min=float(cosine.min()), cosine_max=float(cosine.max()),
                  bm25_min=float(bm25_scores.min()), bm25_max=float(bm25_scores.max())) if n else {}
    return [
        Fusion("score", w, float(cosine[i]), float(bm25_scores[i]), float(vector[i]),
               float(lexical[i]), float(fused[i]), cross_script=bool(cross[i]),
               cross_script_weight=cross_weight, vector_rank=int(vector_rank[i]),
               bm25_rank=int(bm25_rank[i]), candidates=n,
               cross_norm=float(cross_norm[i]), cross_candidates=int(cross.sum()),
               **bounds, **(cross_bounds if cross[i] else {}))
        for i in range(n)
    ]


def minmax(values: np.ndarray) -> np.ndarray:
    """0 for the lowest value, 1 for the highest; all ones when they are all equal."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.ones_like(values, dtype=np.float64)
    return (values - low) / (high - low)
