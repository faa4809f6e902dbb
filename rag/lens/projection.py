"""2-D/3-D maps of a collection (PCA, t-SNE, UMAP) with the query and its hits placed on them.

Plain data out (`MapData`); figures live in `rag.lens.plots`. Every method is fitted on the
chunks alone, once per collection state, and cached, so a new question or a switch between maps
already computed costs no fit. PCA places the query with its linear transform; t-SNE and UMAP have
no faithful out-of-sample transform, so the query is drawn at the rank-weighted centre of its hits
(the map then never contradicts the hits, and the caption says so). t-SNE is openTSNE's FFT
gradient (2-D; Barnes-Hut in 3-D) on a 50-axis PCA of the vectors; UMAP's numba code is compiled
once and cached under the data dir (`NUMBA_CACHE_DIR`), not in site-packages.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.errors import ConfigError
from rag.lens.cache import Lru
from rag.lens.collection import CollectionVectors, unit_rows

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit

Method = Literal["pca", "tsne", "umap"]
METHODS: tuple[Method, ...] = ("pca", "tsne", "umap")
MAX_POINTS = 3000
"""Points drawn in a projection; larger collections are sampled (hits and the query always kept)."""
UMAP_INSTALL = "pip install 'rag-lens[umap]'  (or: pip install umap-learn)"

_PROJECTIONS: Lru[Any] = Lru(limit=16)
PRE_PCA = 50
"""Axes kept before t-SNE/UMAP: neighbours barely change, the neighbour search gets 10-30x cheaper."""
TSNE_ITERATIONS = 375
TSNE_EXAGGERATION_ITERATIONS = 125
"""openTSNE's defaults are 250 + 500; two thirds of that settles a map of a few thousand points."""
UMAP_EPOCHS = 200
"""umap-learn's own default for fewer than 10,000 points is 500; 200 gives the same clusters."""
QUERY_NOTE = ("the query is drawn at the rank-weighted centre of its hits: {method} cannot place a "
              "new point without refitting the map")


@dataclass(frozen=True)
class MapPoint:
    x: float
    y: float
    z: float | None
    kind: Literal["chunk", "hit", "query"]
    source: str
    text: str
    id: str = ""
    rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"x": self.x, "y": self.y}
        if self.z is not None:
            out["z"] = self.z
        out.update(kind=self.kind, source=self.source, text=self.text)
        if self.rank is not None:
            out["rank"] = self.rank
        return out


@dataclass
class MapData:
    method: Method
    dims: int
    points: list[MapPoint]
    total: int
    """Chunks in the collection (points drawn may be a sample)."""
    seconds: float
    cached: bool
    note: str = ""

    @property
    def query(self) -> MapPoint | None:
        return next((p for p in self.points if p.kind == "query"), None)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "dims": self.dims, "total": self.total,
                "points": [p.as_dict() for p in self.points]}


def umap_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def sample_rows(n: int, cap: int, keep: Sequence[int] = (), seed: int = 0) -> list[int]:
    """Row indices to draw: everything up to `cap`, else a seeded sample plus the rows in `keep`."""
    if n <= cap:
        return list(range(n))
    base = set(random.Random(seed).sample(range(n), cap))
    return sorted(base | {k for k in keep if 0 <= k < n})


def project(matrix: np.ndarray, method: Method, dims: int, *, seed: int = 0) -> np.ndarray:
    """Rows of `matrix` placed in `dims` dimensions (PCA, t-SNE or UMAP, cosine geometry)."""
    if dims not in (2, 3):
        raise ConfigError(f"A map has 2 or 3 dimensions, not {dims}.")
    n = matrix.shape[0]
    if method == "pca" or n <= dims + 1:
        return _pca(matrix, dims, seed).transform(matrix)
    if method == "tsne":
        return _tsne(_reduced(matrix, seed), dims, seed)
    if method == "umap":
        if not umap_available():
            raise ConfigError(f"UMAP needs the optional umap-learn package: {UMAP_INSTALL}")
        import warnings

        umap = _import_umap()
        neighbours = max(2, min(15, n - 1))
        reducer = umap.UMAP(n_components=dims, metric="cosine", n_neighbors=neighbours,
                            random_state=seed, init="random" if n < 10 else "spectral",
                            n_epochs=UMAP_EPOCHS)
        matrix = _reduced(matrix, seed)
        with warnings.catch_warnings():  # "n_jobs overridden by random_state": reproducible is wanted
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(reducer.fit_transform(matrix), dtype=np.float64)
    raise ConfigError(f"Unknown projection method {method!r}: use one of {', '.join(METHODS)}.")


def _reduced(matrix: np.ndarray, seed: int) -> np.ndarray:
    """The rows on their top `PRE_PCA` principal axes (unchanged when they have fewer columns)."""
    if matrix.shape[1] <= PRE_PCA or matrix.shape[0] <= PRE_PCA:
        return np.asarray(matrix, dtype=np.float32)
    return _pca(matrix, PRE_PCA, seed).transform(matrix).astype(np.float32)


def _tsne(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """openTSNE (FFT-accelerated in 2-D), or scikit-learn's Barnes-Hut t-SNE without it."""
    import os

    n = x.shape[0]
    perplexity = float(max(1.0, min(30.0, (n - 1) / 3)))
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        from sklearn.manifold import TSNE

        return TSNE(n_components=dims, init="pca", perplexity=perplexity,
                    max_iter=TSNE_ITERATIONS + TSNE_EXAGGERATION_ITERATIONS,
                    random_state=seed).fit_transform(x).astype(np.float64)
    gradient = "fft" if dims <= 2 and n >= 200 else "bh"
    embedded = OpenTSNE(n_components=dims, perplexity=perplexity, n_iter=TSNE_ITERATIONS,
                        early_exaggeration_iter=TSNE_EXAGGERATION_ITERATIONS,
                        negative_gradient_method=gradient, n_jobs=os.cpu_count() or 1,
                        random_state=seed, verbose=False).fit(x)
    return np.asarray(embedded, dtype=np.float64)


def _import_umap() -> Any:
    """umap-learn, with numba's compiled code cached under the data dir, not in site-packages.

    numba reads NUMBA_CACHE_DIR once, when it is first imported, so it is set just before (unless
    the user set it); compiling UMAP's functions costs tens of seconds the first time only."""
    import os

    from rag.config import get_settings

    os.environ.setdefault("NUMBA_CACHE_DIR", str(get_settings().data_dir.absolute() / "numba-cache"))
    import umap

    return umap


class _Pca:
    """A fitted PCA; pads with zeros when there are fewer points than dimensions asked for."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, dims: int) -> None:
        self.mean, self.components, self.dims = mean, components, dims

    def transform(self, m: np.ndarray) -> np.ndarray:
        out = np.zeros((m.shape[0], self.dims))
        k = self.components.shape[0]
        if k:
            m = np.asarray(m, dtype=np.float32)
            out[:, :k] = (m - self.mean.astype(np.float32)) @ self.components.T.astype(np.float32)
        return out


def _pca(matrix: np.ndarray, dims: int, seed: int) -> _Pca:
    """Top principal axes with numpy alone (exact SVD when small, randomized SVD when large).

    numpy rather than scikit-learn because importing sklearn costs a second of every `rag map`,
    and three components of a few thousand vectors need nothing more than this.
    """
    x = np.asarray(matrix)
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64) if n else np.zeros(d)
    k = min(dims, n - 1, d)
    if k < 1:
        return _Pca(mean, np.zeros((0, d)), dims)
    if min(n, d) <= 600:
        _, _, vt = np.linalg.svd(x.astype(np.float64) - mean, full_matrices=False)
    else:  # Halko et al.: a sketch with oversampling and power iterations, accurate for top axes
        centred = (x - mean).astype(np.float32)  # float32 halves the cost of the big products
        rng = np.random.default_rng(seed)
        sketch = centred @ rng.standard_normal((d, k + 10)).astype(np.float32)
        for _ in range(4):
            sketch, _ = np.linalg.qr(sketch)
            sketch = centred @ (centred.T @ sketch)
        basis, _ = np.linalg.qr(sketch)
        _, _, vt = np.linalg.svd((basis.T @ centred).astype(np.float64), full_matrices=False)
    components = vt[:k]
    # an axis and its negation are the same axis: pick the sign that makes maps reproducible
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    return _Pca(mean, components * signs[:, None], dims)


def build_map(
    vectors: CollectionVectors,
    *,
    method: Method = "pca",
    dims: int = 2,
    query: Sequence[float] | None = None,
    query_text: str = "",
    hits: Sequence[Hit] = (),
    max_points: int = MAX_POINTS,
    seed: int = 0,
) -> MapData:
    """The collection projected, with the query and its hits marked; cached per collection state.

    Every method is fitted once per (collection, dims, sample) on the chunks alone, so a new
    query costs no fit: PCA projects it into its space (one matrix product); t-SNE and UMAP have
    no faithful out-of-sample transform, so the query goes to the rank-weighted centre of its hits
    (or of its nearest chunks when there are none), and hits outside the sample to the centre of
    their nearest sampled chunks.
    """
    started = time.perf_counter()
    hit_rank = {h.id: h.rank for h in hits}
    keep = [r for h in hits if (r := vectors.row(h.id)) is not None]
    rows = sample_rows(len(vectors), max_points, keep, seed)
    fit_rows = sample_rows(len(vectors), max_points, (), seed)
    q = None if query is None else unit_rows(np.asarray(query, dtype=np.float32))
    note = ""
    cached = True
    if method != "pca" and len(fit_rows) <= dims + 1:
        note = f"{method} needs more points; showing PCA"
        method = "pca"
    key = (method, vectors.key, dims, max_points, seed)
    fitted = _PROJECTIONS.recall(key)
    if method == "pca":
        if fitted is None:
            cached = False
            model = _pca(vectors.matrix[fit_rows], dims, seed)
            fitted = _PROJECTIONS.remember(key, (model, model.transform(vectors.matrix)))
        model, coords_all = fitted
        coords = coords_all[rows]
        q_coords = model.transform(q[None, :])[0] if q is not None else None
    else:
        if fitted is None:
            cached = False
            fitted = _PROJECTIONS.remember(key, _fit_nonlinear(vectors, fit_rows, method, dims, seed))
        coords = np.stack([fitted[r] if r in fitted else _placed(vectors, fitted, r)
                           for r in rows]) if rows else np.zeros((0, dims))
        q_coords = None
        if q is not None:
            q_coords = _query_position(vectors, fitted, q, hits, dims)
            note = QUERY_NOTE.format(method="t-SNE" if method == "tsne" else "UMAP")
    points = []
    for row, c in zip(rows, coords, strict=True):
        id_ = vectors.ids[row]
        rank = hit_rank.get(id_)
        points.append(MapPoint(
            float(c[0]), float(c[1]), float(c[2]) if dims == 3 else None,
            "hit" if rank is not None else "chunk", vectors.sources[row], vectors.texts[row],
            id_, rank,
        ))
    if q_coords is not None:
        points.append(MapPoint(float(q_coords[0]), float(q_coords[1]),
                               float(q_coords[2]) if dims == 3 else None, "query", "(query)",
                               query_text, "query"))
    return MapData(method, dims, points, vectors.total, time.perf_counter() - started, cached, note)


def _fit_nonlinear(vectors: CollectionVectors, rows: list[int], method: Method, dims: int,
                   seed: int) -> dict[int, np.ndarray]:
    """t-SNE or UMAP of the sampled chunks alone: row -> position."""
    coords = project(vectors.matrix[rows], method, dims, seed=seed)
    return {r: coords[i] for i, r in enumerate(rows)}


def _placed(vectors: CollectionVectors, fitted: dict[int, np.ndarray], row: int) -> np.ndarray:
    """A chunk outside the fitted sample (a hit in a large collection), at its neighbours' centre."""
    return _neighbour_centre(vectors, fitted, vectors.matrix[row])


def _neighbour_centre(vectors: CollectionVectors, fitted: dict[int, np.ndarray], vec: np.ndarray,
                      k: int = 5) -> np.ndarray:
    rows = np.fromiter(fitted, dtype=int)
    sims = vectors.matrix[rows] @ vec
    top = np.argsort(-sims)[:k]
    weights = np.maximum(sims[top], 1e-6)
    return np.average(np.stack([fitted[int(rows[i])] for i in top]), axis=0, weights=weights)


def _query_position(vectors: CollectionVectors, fitted: dict[int, np.ndarray], q: np.ndarray,
                    hits: Sequence[Hit], dims: int) -> np.ndarray:
    """The rank-weighted centre (1/rank) of the hits on the map; the nearest chunks without hits."""
    spots, weights = [], []
    for h in hits:
        row = vectors.row(h.id)
        if row is None:
            continue
        spots.append(fitted[row] if row in fitted else _placed(vectors, fitted, row))
        weights.append(1.0 / max(h.rank, 1))
    if not spots:
        return _neighbour_centre(vectors, fitted, q)
    return np.average(np.stack(spots), axis=0, weights=weights)
