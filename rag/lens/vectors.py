"""What the debug panel, the Explorer and `rag embed`/`rag map` show, as plain data.

Tokens (cl100k_base IDs, with byte-fragment tokens grouped under the character they spell), vector
summaries and exports, the similarity of a query to every chunk, 2-D/3-D projections of a
collection (PCA, t-SNE, UMAP) cached per collection state, the per-dimension contributions behind
one hit's score, and next-token probabilities from logprobs. Numpy in, dataclasses out: no
Streamlit and no Plotly here (figures live in `rag.lens.plots`, widgets in `rag.ui`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.errors import ConfigError, EmptyStoreError
from rag.tokens import ENCODING_NAME, Token, encoding, tokenize

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag.answer.answerer import TokenLogprob
    from rag.config import Settings
    from rag.embeddings import EmbeddingInfo
    from rag.retrieve.searcher import Hit

log = logging.getLogger(__name__)

Method = Literal["pca", "tsne", "umap"]
METHODS: tuple[Method, ...] = ("pca", "tsne", "umap")
MAX_POINTS = 3000
"""Points drawn in a projection; larger collections are sampled (hits and the query always kept)."""
MAX_LOADED = 20_000
"""Chunk vectors held in memory for the similarity histogram and maps; beyond it, a sample."""
SNIPPET_CHARS = 160
UMAP_INSTALL = "pip install 'rag-lens[umap]'  (or: pip install umap-learn)"


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenGroup:
    """Consecutive tokens that together spell `text`; one token unless a character was split."""

    text: str
    tokens: list[Token]

    @property
    def split(self) -> bool:
        """True when one character cost several byte-fragment tokens (typical for kanji)."""
        return len(self.tokens) > 1


def token_groups(text: str) -> list[TokenGroup]:
    """The text's cl100k tokens, with byte fragments gathered until they decode to characters."""
    enc = encoding()
    groups: list[TokenGroup] = []
    pending: list[Token] = []
    raw = b""
    for token in tokenize(text):
        pending.append(token)
        raw += enc.decode_single_token_bytes(token.id)
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            if len(raw) < 16:  # wait for the rest of the character
                continue
            decoded = raw.decode("utf-8", errors="replace")
        groups.append(TokenGroup(decoded, pending))
        pending, raw = [], b""
    if pending:
        groups.append(TokenGroup(raw.decode("utf-8", errors="replace"), pending))
    return groups


@dataclass(frozen=True)
class TokenStats:
    chars: int
    tokens: int

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0


def token_stats(text: str) -> TokenStats:
    return TokenStats(chars=len(text), tokens=len(tokenize(text)))


# --- vectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorSummary:
    dims: int
    norm: float
    minimum: float
    maximum: float
    mean: float


def summarize(vector: Sequence[float] | np.ndarray) -> VectorSummary:
    v = np.asarray(vector, dtype=np.float64)
    if v.size == 0:
        return VectorSummary(0, 0.0, 0.0, 0.0, 0.0)
    return VectorSummary(int(v.size), float(np.linalg.norm(v)), float(v.min()), float(v.max()),
                         float(v.mean()))


def vector_csv(vectors: dict[str, Sequence[float]]) -> str:
    """One column per labelled vector, one row per dimension: opens as-is in a spreadsheet."""
    labels = list(vectors)
    arrays = [np.asarray(vectors[label], dtype=np.float64) for label in labels]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dim", *labels])
    for dim in range(max((a.size for a in arrays), default=0)):
        writer.writerow([dim, *(repr(float(a[dim])) if dim < a.size else "" for a in arrays)])
    return out.getvalue()


def vector_json(vectors: dict[str, Sequence[float]]) -> str:
    return json.dumps({k: [float(x) for x in v] for k, v in vectors.items()}, ensure_ascii=False)


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norms) if norms else 0.0


def embed_report(text: str, settings: Settings) -> dict[str, Any]:
    """What `rag embed --json` prints: the tokens OpenAI's models read and the vector we store."""
    from rag.embeddings import get_embeddings, resolve

    info = resolve(settings)
    vector = get_embeddings(settings, info).embed_query(text)
    tokens = tokenize(text)
    return {
        "text": text,
        "encoding": ENCODING_NAME,
        "tokens": [{"id": t.id, "text": t.text} for t in tokens],
        "token_ids": [t.id for t in tokens],
        "embedding": info.as_dict(),
        "vector": [float(x) for x in vector],
        "norm": summarize(vector).norm,
    }


# --- the collection's vectors, cached per collection state -------------------------------------


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
        return self.matrix @ _unit(np.asarray(query, dtype=np.float32))

    def nearest(self, query: Sequence[float] | np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """(row, cosine) of the k most similar chunks, exactly (numpy, not the HNSW index)."""
        sims = self.similarities(query)
        k = min(k, sims.size)
        top = np.argpartition(-sims, k - 1)[:k] if k else np.array([], dtype=int)
        return [(int(i), float(sims[i])) for i in sorted(top, key=lambda i: -sims[i])]


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1.0, norms)).astype(np.float32)


_LOCK = threading.Lock()
_VECTORS: OrderedDict[tuple[Any, ...], CollectionVectors] = OrderedDict()
_PROJECTIONS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def _remember(cache: OrderedDict, key: tuple[Any, ...], value: Any, limit: int) -> Any:
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)
    return value


def _recall(cache: OrderedDict, key: tuple[Any, ...]) -> Any:
    with _LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    return None


def collection_key(settings: Settings, info: EmbeddingInfo, coll: Collection) -> tuple[Any, ...]:
    """Changes whenever the collection does: its name, size and the store's write version."""
    from rag.state import read_version

    version = read_version(settings, info.collection_name)
    return (str(settings.data_dir.absolute()), coll.name, coll.count(), version)


def load_vectors(coll: Collection, key: tuple[Any, ...], *, cap: int = MAX_LOADED,
                 seed: int = 0) -> CollectionVectors:
    """All chunk vectors of the collection (a seeded sample beyond `cap`), once per `key`."""
    cached = _recall(_VECTORS, key)
    if cached is not None:
        return cached
    started = time.perf_counter()
    total = coll.count()
    if total == 0:
        raise EmptyStoreError(
            f"The collection {coll.name} is empty: run `rag ingest PATH` (or upload files in the "
            "app) first."
        )
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
    matrix = _unit(np.concatenate(rows)) if rows else np.zeros((0, 0), np.float32)
    loaded = CollectionVectors(key, ids, texts, sources, matrix, total)
    log.info("loaded %d of %d vectors of %s in %.2f s", len(ids), total, coll.name,
             time.perf_counter() - started)
    return _remember(_VECTORS, key, loaded, limit=2)


def hit_vector(hit: Hit, vectors: CollectionVectors | None = None) -> np.ndarray | None:
    """The vector Chroma stored for this hit (keyword-only hits carry none; look it up)."""
    if hit.vector is not None:
        return np.asarray(hit.vector, dtype=np.float32)
    if vectors is not None and (row := vectors.row(hit.id)) is not None:
        return vectors.matrix[row]
    return None


# --- similarity, why this hit -------------------------------------------------------------------


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


# --- projections --------------------------------------------------------------------------------


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
        from sklearn.manifold import TSNE

        perplexity = float(max(1.0, min(30.0, (n - 1) / 3)))
        return TSNE(n_components=dims, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed).fit_transform(matrix).astype(np.float64)
    if method == "umap":
        if not umap_available():
            raise ConfigError(f"UMAP needs the optional umap-learn package: {UMAP_INSTALL}")
        import warnings

        import umap

        neighbours = max(2, min(15, n - 1))
        reducer = umap.UMAP(n_components=dims, metric="cosine", n_neighbors=neighbours,
                            random_state=seed, init="random" if n < 10 else "spectral")
        with warnings.catch_warnings():  # "n_jobs overridden by random_state": reproducible is wanted
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(reducer.fit_transform(matrix), dtype=np.float64)
    raise ConfigError(f"Unknown projection method {method!r}: use one of {', '.join(METHODS)}.")


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


def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()


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

    PCA is fitted once per (collection, dims, sample) on the chunks alone and the query is
    projected into that space, so typing a new query costs one matrix product. t-SNE and UMAP have
    no faithful out-of-sample transform, so they are fitted with the query included and cached per
    query as well.
    """
    started = time.perf_counter()
    hit_rank = {h.id: h.rank for h in hits}
    keep = [r for h in hits if (r := vectors.row(h.id)) is not None]
    rows = sample_rows(len(vectors), max_points, keep, seed)
    q = None if query is None else _unit(np.asarray(query, dtype=np.float32))
    note = ""
    cached = True
    if method == "pca" or len(rows) <= dims + 1:
        fit_rows = sample_rows(len(vectors), max_points, (), seed)
        key = ("pca", vectors.key, dims, max_points, seed)
        fitted = _recall(_PROJECTIONS, key)
        if fitted is None:
            cached = False
            model = _pca(vectors.matrix[fit_rows], dims, seed)
            fitted = _remember(_PROJECTIONS, key, (model, model.transform(vectors.matrix)), 16)
        model, coords_all = fitted
        coords = coords_all[rows]
        q_coords = model.transform(q[None, :])[0] if q is not None else None
        if method != "pca":
            note = f"{method} needs more points; showing PCA"
            method = "pca"
    else:
        key = (method, vectors.key, dims, max_points, seed, _digest(q) if q is not None else None,
               tuple(sorted(keep)))
        got = _recall(_PROJECTIONS, key)
        if got is None:
            cached = False
            m = vectors.matrix[rows]
            if q is not None:
                m = np.vstack([m, q[None, :]])
            got = _remember(_PROJECTIONS, key, project(m, method, dims, seed=seed), 16)
        coords = got[: len(rows)]
        q_coords = got[len(rows)] if q is not None else None
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


# --- next-token probabilities ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenChoice:
    """One generated token: how likely it was, and what else the model considered."""

    position: int
    token: str
    probability: float
    alternatives: list[tuple[str, float]]
    """(token, probability), most likely first; the chosen token included."""

    @property
    def runner_up(self) -> tuple[str, float] | None:
        return next(((t, p) for t, p in self.alternatives if t != self.token), None)


def token_choices(logprobs: Sequence[TokenLogprob] | None) -> list[TokenChoice]:
    """Logprobs turned into probabilities (exp), alternatives best first."""
    out: list[TokenChoice] = []
    for i, lp in enumerate(logprobs or []):
        alts = sorted(((t, math.exp(p)) for t, p in lp.top), key=lambda a: -a[1])
        out.append(TokenChoice(i, lp.token, math.exp(lp.logprob), alts))
    return out


def logprob_table(choices: Sequence[TokenChoice]) -> list[dict[str, Any]]:
    """Rows for a table: position, token, probability and the alternatives as text."""
    return [
        {
            "#": c.position,
            "token": c.token,
            "p": round(c.probability, 4),
            "alternatives": "  ·  ".join(f"{t!r} {p:.1%}" for t, p in c.alternatives),
        }
        for c in choices
    ]
