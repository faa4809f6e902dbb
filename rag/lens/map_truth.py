"""What a 2-D/3-D map keeps and loses: variance per PCA axis, and a point's true neighbours.

A map squeezes hundreds of dimensions into two or three, so "close on the map" and "close in the
vector space" disagree. For a chosen chunk this module lists its nearest neighbours in the full
space (exact cosine over every loaded vector) beside its nearest neighbours on the map (Euclidean
in the drawn coordinates), and how many the two lists share; for PCA, the share of the
collection's variance each axis keeps. It also finds points by source or text. Plain data out;
the page is `rag.ui.map_truth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.lens.cache import Lru
from rag.lens.collection import CollectionVectors
from rag.lens.projection import MapData, MapPoint, nearest_neighbours, pca, sample_rows


@dataclass(frozen=True)
class Neighbour:
    id: str
    source: str
    text: str
    cosine: float
    """Cosine similarity to the chosen chunk in the full vector space."""
    map_distance: float | None
    """Distance on the map (None when the neighbour is not drawn)."""


@dataclass(frozen=True)
class Neighbourhood:
    point: MapPoint
    in_space: list[Neighbour]
    on_map: list[Neighbour]

    @property
    def shared(self) -> int:
        return len({n.id for n in self.in_space} & {n.id for n in self.on_map})


_SHARES: Lru[list[float]] = Lru(limit=16)


def explained_variance(vectors: CollectionVectors, dims: int, *, max_points: int = 3000,
                       seed: int = 0) -> list[float]:
    """Share (0–1) of the collection's variance each PCA axis keeps, fitted as the map fits it.

    Cached per collection state: the caption under every map redraw asks again."""
    key = (vectors.key, dims, max_points, seed)
    known = _SHARES.recall(key)
    if known is None:
        known = _SHARES.remember(key, _explained_variance(vectors, dims, max_points, seed))
    return list(known)


def _explained_variance(vectors: CollectionVectors, dims: int, max_points: int, seed: int) -> list[float]:
    rows = sample_rows(len(vectors), max_points, (), seed)
    x = vectors.matrix[rows].astype(np.float64)
    if len(x) < 2:
        return []
    model = pca(x, dims, seed)
    centred = x - x.mean(axis=0)
    total = float((centred ** 2).sum(axis=1).mean())
    if total <= 0:
        return []
    coords = model.transform(x)[:, : model.components.shape[0]]
    return [float((coords[:, i] ** 2).mean() / total) for i in range(coords.shape[1])]


def _coords(p: MapPoint) -> np.ndarray:
    return np.array([p.x, p.y] + ([p.z] if p.z is not None else []), dtype=np.float64)


def neighbourhood(vectors: CollectionVectors, data: MapData, chunk_id: str, k: int = 5) -> Neighbourhood | None:
    """The chunk's k nearest in the full space and k nearest on the map (itself and the query left out)."""
    drawn = {p.id: p for p in data.points if p.kind != "query"}
    point = drawn.get(chunk_id)
    row = vectors.row(chunk_id)
    if point is None or row is None:
        return None
    here = _coords(point)
    map_dist = {pid: float(np.linalg.norm(_coords(p) - here)) for pid, p in drawn.items()}
    near = [(r, s) for r, s in vectors.nearest(vectors.matrix[row], k + 1) if r != row][:k]
    in_space = [Neighbour(vectors.ids[r], vectors.sources[r], vectors.texts[r], s,
                          map_dist.get(vectors.ids[r])) for r, s in near]
    others = sorted((pid for pid in drawn if pid != chunk_id), key=lambda pid: map_dist[pid])[:k]
    on_map = []
    for pid in others:
        r = vectors.row(pid)
        cos = float(vectors.matrix[r] @ vectors.matrix[row]) if r is not None else float("nan")
        on_map.append(Neighbour(pid, drawn[pid].source, drawn[pid].text, cos, map_dist[pid]))
    return Neighbourhood(point, in_space, on_map)


def find_points(data: MapData, text: str, limit: int = 50) -> list[MapPoint]:
    """Drawn chunks whose source or text contains `text` (case-insensitive)."""
    needle = text.strip().lower()
    if not needle:
        return []
    return [p for p in data.points if p.kind != "query"
            and (needle in p.source.lower() or needle in p.text.lower())][:limit]


def neighbour_agreement(matrix: np.ndarray, coords: np.ndarray, k: int = 5) -> float:
    """Mean share (0–1) of each point's k nearest on the map that are among its k nearest by
    cosine in the full space: the one number that says how far "close on the map" can be trusted.

    Both lists are exact (one matrix product each), so this is for the few thousand points a map
    draws, not for a whole large collection."""
    n = len(matrix)
    k = min(k, n - 1)
    if k < 1:
        return 1.0
    true, _ = nearest_neighbours(matrix, k)
    c = np.asarray(coords, dtype=np.float64)
    squared = (c ** 2).sum(axis=1)
    dist = squared[:, None] + squared[None, :] - 2.0 * c @ c.T
    np.fill_diagonal(dist, np.inf)
    on_map = np.argpartition(dist, k - 1, axis=1)[:, :k]
    shared = [len(set(a) & set(b)) for a, b in zip(true.tolist(), on_map.tolist(), strict=True)]
    return float(np.mean(shared)) / k
