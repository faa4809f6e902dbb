"""Every number behind one hit's vector score: the per-dimension products and Chroma's distance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rag.lens.vectors import cosine

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


@dataclass(frozen=True)
class Why:
    """Every number behind one hit's score, so none of them is a mystery."""

    metric: str
    distance: float | None
    """What Chroma returned (cosine distance = 1 - cosine similarity)."""
    similarity_from_distance: float | None
    dot: float
    """query . chunk from the raw vectors (equals the cosine when both are unit length)."""
    cosine: float
    query_norm: float
    hit_norm: float
    top_positive: list[tuple[int, float]]
    """(dimension, query[d] * chunk[d]), largest first."""
    top_negative: list[tuple[int, float]]
    """(dimension, query[d] * chunk[d]), most negative first."""
    positive_share: float
    """Sum of all positive products: how much the agreeing dimensions add before the negatives."""
    negative_share: float


def why_hit(query: Sequence[float], hit_vec: Sequence[float] | np.ndarray,
            distance: float | None, *, metric: str = "cosine", top: int = 20) -> Why:
    q = np.asarray(query, dtype=np.float64)
    h = np.asarray(hit_vec, dtype=np.float64)
    products = q * h
    order = np.argsort(products)
    positive = [(int(d), float(products[d])) for d in order[::-1][:top] if products[d] > 0]
    negative = [(int(d), float(products[d])) for d in order[:top] if products[d] < 0]
    return Why(
        metric=metric, distance=distance,
        similarity_from_distance=None if distance is None else 1.0 - distance,
        dot=float(products.sum()), cosine=cosine(q, h),
        query_norm=float(np.linalg.norm(q)), hit_norm=float(np.linalg.norm(h)),
        top_positive=positive, top_negative=negative,
        positive_share=float(products[products > 0].sum()),
        negative_share=float(products[products < 0].sum()),
    )


def collection_metric(coll: Collection) -> str:
    """The distance function the collection's HNSW index was built with."""
    try:
        config = coll.configuration_json or {}
        space = (config.get("hnsw") or {}).get("space") or (config.get("spann") or {}).get("space")
    except Exception:  # an older server's configuration shape
        space = None
    return str(space or (coll.metadata or {}).get("hnsw:space") or "l2")
