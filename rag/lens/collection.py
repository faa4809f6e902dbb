"""The collection's vectors as one normalised matrix, loaded once per collection state.

The similarity histogram, the maps and Compare's nearest chunks all need every chunk vector (or a
seeded sample beyond `MAX_LOADED`); loading them costs a full read of the collection, so the matrix
is kept per `collection_key`, which changes whenever the collection does.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import EmptyStoreError
from rag.lens.cache import Lru

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.config import Settings
    from rag.embed.providers import EmbeddingInfo
    from rag.retrieve.hits import Hit

log = logging.getLogger(__name__)

MAX_LOADED = 20_000
"""Chunk vectors held in memory for the similarity histogram and maps; beyond it, a sample."""


@dataclass
class CollectionVectors:
    """Chunk ids, texts, sources and vectors of one collection (or a sample of it), as arrays."""

    key: tuple[Any, ...]
    ids: list[str]
    texts: list[str]
    sources: list[str]
    matrix: np.ndarray
    """float32, one row per chunk, L2-normalised so a dot product is the cosine similarity."""
    total: int
    """Chunks in the collection; more than `len(ids)` when only a sample was loaded."""
    _row: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._row = {id_: i for i, id_ in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sampled(self) -> bool:
        return len(self.ids) < self.total

    def row(self, chunk_id: str) -> int | None:
        return self._row.get(chunk_id)

    def similarities(self, query: Sequence[float] | np.ndarray) -> np.ndarray:
        """Cosine similarity of the query to every loaded chunk."""
        return self.matrix @ unit_rows(np.asarray(query, dtype=np.float32))

    def nearest(self, query: Sequence[float] | np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """(row, cosine) of the k most similar chunks, exactly (numpy, not the HNSW index)."""
        sims = self.similarities(query)
        k = min(k, sims.size)
        top = np.argpartition(-sims, k - 1)[:k] if k else np.array([], dtype=int)
        return [(int(i), float(sims[i])) for i in sorted(top, key=lambda i: -sims[i])]


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so a dot product is the cosine."""
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1.0, norms)).astype(np.float32)


_VECTORS: Lru[CollectionVectors] = Lru(limit=2)


def collection_key(settings: Settings, info: EmbeddingInfo, coll: Collection) -> tuple[Any, ...]:
    """Changes whenever the collection does: its name, size and the store's write version."""
    from rag.state import read_version

    version = read_version(settings, info.collection_name)
    return (str(settings.data_dir.absolute()), coll.name, coll.count(), version)


def load_vectors(coll: Collection, key: tuple[Any, ...], *, cap: int = MAX_LOADED,
                 seed: int = 0) -> CollectionVectors:
    """All chunk vectors of the collection (a seeded sample beyond `cap`), once per `key`."""
    cached = _VECTORS.recall(key)
    if cached is not None:
        return cached
    started = time.perf_counter()
    total = coll.count()
    if total == 0:
        raise EmptyStoreError(f"The collection {coll.name} is empty.", EmptyStoreError.default_fix)
    if total > cap:
        all_ids = coll.get(include=[])["ids"]
        wanted: list[str] | None = sorted(random.Random(seed).sample(all_ids, cap))
    else:
        wanted = None
    ids: list[str] = []
    texts: list[str] = []
    sources: list[str] = []
    rows: list[np.ndarray] = []
    batch = 5000
    for start in range(0, cap if wanted is not None else total, batch):
        if wanted is not None:
            got = coll.get(ids=wanted[start:start + batch],
                           include=["embeddings", "documents", "metadatas"])
        else:
            got = coll.get(limit=batch, offset=start, include=["embeddings", "documents", "metadatas"])
        ids.extend(got["ids"])
        texts.extend(d or "" for d in got["documents"])
        sources.extend(str((m or {}).get("source", "?")) for m in got["metadatas"])
        rows.append(np.asarray(got["embeddings"], dtype=np.float32))
    matrix = unit_rows(np.concatenate(rows)) if rows else np.zeros((0, 0), np.float32)
    loaded = CollectionVectors(key, ids, texts, sources, matrix, total)
    log.info("loaded %d of %d vectors of %s in %.2f s", len(ids), total, coll.name,
             time.perf_counter() - started)
    return _VECTORS.remember(key, loaded)


def hit_vector(hit: Hit, vectors: CollectionVectors | None = None) -> np.ndarray | None:
    """The vector Chroma stored for this hit.

Searches attach it to every hit; a hit built without one (a test, a restored chat) is looked up
in the loaded matrix (unit length), and None when the chunk is not loaded.
"""
    if hit.vector is not None:
        return np.asarray(hit.vector, dtype=np.float32)
    if vectors is not None and (row := vectors.row(hit.id)) is not None:
        return vectors.matrix[row]
    return None
