"""2-D/3-D maps of a collection (PCA, t-SNE, UMAP) with the query and its hits placed on them.

Plain data out (`MapData`); figures live in `rag.lens.plots`. Every method is fitted on the
chunks alone, once per collection state, and cached, so a new question or a switch between maps
already computed costs no fit; once one map is drawn, `prefetch` fits the others in a background
thread so the next click finds them ready. PCA places the query with its linear transform; t-SNE
and UMAP have no faithful out-of-sample transform, so the query is drawn at the rank-weighted
centre of its hits (the map then never contradicts the hits, and the caption says so).

Sized for <= 3,000 points answering in about 3 s of one core (bench/projection.py): the exact
nearest neighbours come from one matrix product of the unit vectors (no Annoy or NN-descent);
t-SNE is openTSNE's Barnes-Hut gradient from a PCA start with short, fixed phases (FFT gradients
cost more than Barnes-Hut below ~10,000 points); UMAP takes the same neighbours and 200 epochs.
Fits run on one thread: on two shared cores, BLAS and openTSNE threads spent 3-20x longer
waiting for each other than computing. UMAP's numba code is compiled once and cached under the
data dir (`NUMBA_CACHE_DIR`), not in site-packages.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
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
_FITTING: dict[tuple[Any, ...], Future] = {}
"""Fits under way (foreground or prefetch): a second asker waits for the first instead of refitting."""
_FITTING_LOCK = threading.Lock()
PRE_PCA = 50
"""Axes kept before UMAP's layout and for t-SNE's start: neighbours barely change, work shrinks."""
TSNE_PERPLEXITY = 15.0
"""Smaller than openTSNE's 30: a map is read for who sits beside whom, and 5-nearest-neighbour
agreement with the full space is higher (0.67 against 0.61 on 3,000 points) at 2/3 of the cost."""
TSNE_PHASES = {2: (75, 175), 3: (50, 150)}
"""(early exaggeration, normal) iterations from a PCA start; openTSNE's defaults are 250 + 500 from
a random one. 3-D gets fewer because its Barnes-Hut tree costs about twice as much per step."""
TSNE_THETA = {2: 0.8, 3: 1.0}
"""Barnes-Hut accuracy (0.5 is openTSNE's default): coarser cells halve the cost; the measured
neighbour agreement moved by less than 0.02."""
UMAP_EPOCHS = 200
"""umap-learn's own default for fewer than 10,000 points is 500; 200 gives the same clusters."""
UMAP_NEIGHBOURS = 15
QUERY_NOTE = ("the query is drawn at the rank-weighted centre of its hits: {method} cannot place a "
              "new point without refitting the map")
PREFETCH_ORDER: tuple[tuple[Method, int], ...] = (
    ("pca", 2), ("tsne", 2), ("umap", 2), ("pca", 3), ("tsne", 3), ("umap", 3))
"""The order a background prefetch fits maps in: the likelier clicks first."""


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


def umap_loaded() -> bool:
    """Whether umap-learn (and numba's compiled code) is already loaded in this process."""
    import sys

    return "umap" in sys.modules


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
    if method not in METHODS:
        raise ConfigError(f"Unknown projection method {method!r}: use one of {', '.join(METHODS)}.")
    if method == "umap" and not umap_available():
        raise ConfigError(f"UMAP needs the optional umap-learn package: {UMAP_INSTALL}")
    n = matrix.shape[0]
    with one_thread():
        if method == "pca" or n <= dims + 1:
            return pca(matrix, dims, seed).transform(matrix)
        unit = unit_rows(np.asarray(matrix, dtype=np.float32))
        if method == "tsne":
            return _tsne(unit, dims, seed)
        return _umap(unit, dims, seed)


def nearest_neighbours(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `k` nearest other rows by cosine, exactly: (indices, cosine similarities), best first.

    One matrix product of the unit rows: for a few thousand rows that is cheaper than building
    an approximate index (Annoy, NN-descent), and it is the truth the maps are checked against."""
    unit = unit_rows(np.asarray(matrix, dtype=np.float32))
    n = unit.shape[0]
    k = max(0, min(k, n - 1))
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    if k == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_LIMIT: Any = None


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS on one thread while any map is being fitted (process-wide, counted across threads).

    Measured on two shared cores under load: an SVD of 1,000 x 512 took 11 s with OpenBLAS's two
    threads and 0.4 s with one; the fits here are small enough that threads only wait. The limit
    is lifted when the last concurrent fit ends, so overlapping fits cannot leave it behind."""
    global _THREADS_USERS, _THREADS_LIMIT
    from threadpoolctl import threadpool_limits

    with _THREADS_LOCK:
        if _THREADS_USERS == 0:
            _THREADS_LIMIT = threadpool_limits(limits=1)
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0 and _THREADS_LIMIT is not None:
                _THREADS_LIMIT.restore_original_limits()
                _THREADS_LIMIT = None


def _tsne(unit: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """openTSNE from a PCA start on exact neighbours, Barnes-Hut gradients, one thread."""
    from openTSNE import TSNEEmbedding, affinity, initialization
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    n = unit.shape[0]
    perplexity = float(max(1.0, min(TSNE_PERPLEXITY, (n - 1) / 3)))
    neighbours, sims = nearest_neighbours(unit, min(n - 1, int(3 * perplexity)))
    distances = np.sqrt(np.maximum(2.0 - 2.0 * sims, 0.0))  # Euclidean between unit vectors
    affinities = affinity.PerplexityBasedNN(
        perplexity=perplexity, knn_index=PrecomputedNeighbors(neighbours, distances), n_jobs=1,
        random_state=seed, verbose=False)
    start = initialization.rescale(pca(unit, dims, seed).transform(unit))
    early, normal = TSNE_PHASES[dims]
    embedding = TSNEEmbedding(start, affinities, negative_gradient_method="bh",
                              theta=TSNE_THETA[dims], n_jobs=1, random_state=seed, verbose=False)
    embedding = embedding.optimize(n_iter=early, exaggeration=12, momentum=0.5)
    embedding = embedding.optimize(n_iter=normal, momentum=0.8)
    return np.asarray(embedding, dtype=np.float64)


def _umap(unit: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """umap-learn on exact cosine neighbours (its graph then needs no distance matrix or index)."""
    import warnings

    umap = _import_umap()
    n = unit.shape[0]
    k = max(2, min(UMAP_NEIGHBOURS, n - 1))
    others, sims = nearest_neighbours(unit, k - 1)
    # umap's neighbour lists start with the point itself, at distance 0
    indices = np.hstack([np.arange(n)[:, None], others])
    distances = np.hstack([np.zeros((n, 1), np.float32), 1.0 - sims]).astype(np.float32)
    reducer = umap.UMAP(n_components=dims, metric="cosine", n_neighbors=k, random_state=seed,
                        init="random" if n < 10 else "spectral", n_epochs=UMAP_EPOCHS,
                        precomputed_knn=(indices, np.maximum(distances, 0.0), None))
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": reproducible is wanted
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(_reduced(unit, seed)), dtype=np.float64)


def _reduced(matrix: np.ndarray, seed: int) -> np.ndarray:
    """The rows on their top `PRE_PCA` principal axes (unchanged when they have fewer columns)."""
    if matrix.shape[1] <= PRE_PCA or matrix.shape[0] <= PRE_PCA:
        return np.asarray(matrix, dtype=np.float32)
    return pca(matrix, PRE_PCA, seed).transform(matrix).astype(np.float32)


def _import_umap() -> Any:
    """umap-learn, with numba's compiled code cached under the data dir, not in site-packages.

    numba reads NUMBA_CACHE_DIR once, when it is first imported, so it is set just before (unless
    the user set it). umap-learn declares most of its numba functions without `cache=True`, so
    every new process compiled them again (6 s of CPU, 30-45 s on our loaded two cores, before
    each app's first UMAP): their on-disk cache is switched on here, so only the very first use
    compiles."""
    import os
    import sys

    from rag.config import get_settings

    os.environ.setdefault("NUMBA_CACHE_DIR", str(get_settings().data_dir.absolute() / "numba-cache"))
    import umap

    _cache_numba_code(("umap", "pynndescent"), sys.modules)
    return umap


def _cache_numba_code(packages: tuple[str, ...], modules: dict[str, Any]) -> int:
    """Turn numba's on-disk cache on for the packages' jitted functions that lack it; how many.

    Of a function jitted twice (umap's serial and parallel layout epoch) only the serial one,
    the one a seeded map runs, gets the cache: numba's cache index tells entries apart by
    signature, not by flags, so two sharing one file could load each other's code."""
    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:  # a numba without these internals: it just compiles as before
        return 0
    found: dict[Any, list[Any]] = {}
    for name, module in list(modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, CPUDispatcher):
                twins = found.setdefault(obj.py_func, [])
                if all(t is not obj for t in twins):
                    twins.append(obj)
    switched = 0
    for twins in found.values():
        serial = twins if len(twins) == 1 else [t for t in twins if not t.targetoptions.get("parallel")]
        if len(serial) == 1 and isinstance(getattr(serial[0], "_cache", None), NullCache):
            serial[0].enable_caching()
            switched += 1
    return switched


class Pca:
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


def pca(matrix: np.ndarray, dims: int, seed: int = 0) -> Pca:
    """The top `dims` principal axes of the rows, fitted exactly as the PCA map fits them.

    Public so that what a map keeps (`rag.lens.map_truth`) is measured on the same axes it draws.
    numpy rather than scikit-learn because importing sklearn costs a second of every `rag map`,
    and three components of a few thousand vectors need nothing more than this.
    """
    x = np.asarray(matrix)
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64) if n else np.zeros(d)
    k = min(dims, n - 1, d)
    if k < 1:
        return Pca(mean, np.zeros((0, d)), dims)
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
    return Pca(mean, components * signs[:, None], dims)


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
    if method == "pca":
        fitted, cached = _fitted(key, lambda: _fit_pca(vectors, fit_rows, dims, seed))
        model, coords_all = fitted
        coords = coords_all[rows]
        q_coords = model.transform(q[None, :])[0] if q is not None else None
    else:
        fitted, cached = _fitted(key, lambda: _fit_nonlinear(vectors, fit_rows, method, dims, seed))
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


def _fitted(key: tuple[Any, ...], fit: Callable[[], Any]) -> tuple[Any, bool]:
    """The cached fit for `key` and whether it was ready; else fit it once, even when a click and
    the background prefetch ask for the same map at the same time (the second waits for the first)."""
    with _FITTING_LOCK:
        ready = _PROJECTIONS.recall(key)
        if ready is not None:
            return ready, True
        running = _FITTING.get(key)
        if running is None:
            running = _FITTING[key] = Future()
            mine = True
        else:
            mine = False
    if not mine:
        return running.result(), False
    try:
        value = _PROJECTIONS.remember(key, fit())
        running.set_result(value)
        return value, False
    except BaseException as exc:
        running.set_exception(exc)
        raise
    finally:
        with _FITTING_LOCK:
            _FITTING.pop(key, None)


def prefetch(vectors: CollectionVectors, *, methods: Sequence[Method] | None = None,
             max_points: int = MAX_POINTS, seed: int = 0) -> threading.Thread | None:
    """Fit every map of this collection not yet cached, in a background thread (PREFETCH_ORDER).

    Called once a map is on screen, so the next method/dims click finds its map ready instead
    of waiting for a fit. One thread, one core: the fits are single-threaded, so a click that
    asks for a map not fitted yet still has the other core. Returns the thread (None when
    nothing is left to fit, or a prefetch of this collection is already running)."""
    wanted = [(m, d) for m, d in PREFETCH_ORDER
              if (methods is None or m in methods) and (m != "umap" or umap_available())
              and _PROJECTIONS.recall((m, vectors.key, d, max_points, seed)) is None]
    guard = ("prefetch", vectors.key, max_points, seed)
    with _FITTING_LOCK:
        if not wanted or guard in _FITTING:
            return None
        _FITTING[guard] = Future()

    def run() -> None:
        try:
            for method, dims in wanted:
                try:
                    build_map(vectors, method=method, dims=dims, max_points=max_points, seed=seed)
                except Exception:  # noqa: BLE001 - a click on that map reports the same error itself
                    logging.getLogger(__name__).debug("prefetch of %s %d-D failed", method, dims,
                                                      exc_info=True)
        finally:
            with _FITTING_LOCK:
                _FITTING.pop(guard).set_result(None)

    thread = threading.Thread(target=run, name="rag-map-prefetch", daemon=True)
    thread.start()
    return thread


def _fit_pca(vectors: CollectionVectors, rows: list[int], dims: int, seed: int) -> tuple[Pca, np.ndarray]:
    with one_thread():
        model = pca(vectors.matrix[rows], dims, seed)
        return model, model.transform(vectors.matrix)


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
