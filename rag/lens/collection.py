"""The collection's vectors as one normalised matrix (or a bounded sample), loaded once per state.

The similarity histogram, the trust percentiles and the maps need chunk vectors. A small
collection is loaded whole; beyond `SAMPLE_CAP` chunks a sample of that size is drawn as whole
files picked at random through the store's manifest (or, for a collection without one, pages at
seeded random offsets), so opening the debug panel costs a bounded number of bounded reads at any
size (listing every id to draw a sample took 9 s at 50k chunks, and grows with the store). The
matrix is kept per `collection_key`, which changes whenever the collection does. Views that show a
sample say so (`sample_note`); Compare's nearest chunks ask the store's index when only a sample
is loaded (`nearest_chunks`), so they are the collection's nearest, not the sample's.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    from rag.state import Manifest

log = logging.getLogger(__name__)

SAMPLE_CAP = 3_000
"""Chunk vectors loaded for the histogram, percentiles and maps; beyond it, a sample of this size.
As many points as a projection draws (`projection.MAX_POINTS`): more is not seen, only waited for."""
SAMPLE_FLOATS = SAMPLE_CAP * 384
"""Wider vectors get fewer points (2,250 at 512 dims, 750 at 1,536), so a sample is read in about
the same time whatever the model: the numbers are what costs (1,000 chunks read by path took 0.2 s
at 384 dims and 0.95 s at 1,536 on a server here)."""
SAMPLE_PAGES = 10
"""A sample is read as this many pages at random offsets (one stratum of the collection each):
more pages mix more files into the sample, each page costs a round trip (~0.1 s on a server)."""
_READERS = 4
"""Pages read at once (a server answers them in parallel; the embedded store releases the GIL)."""
_PATHS_PER_READ = 100


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


def sample_offsets(total: int, cap: int, pages: int = SAMPLE_PAGES, seed: int = 0) -> list[tuple[int, int]]:
    """(offset, limit) of the pages to read: the collection cut into `pages` equal strata and one
    page placed at a seeded random position in each, so pages never overlap and together read
    exactly `min(cap, total)` rows, spread over the whole collection."""
    if total <= cap:
        return [(start, min(cap, total - start)) for start in range(0, total, cap)] if total else []
    pages = max(1, min(pages, cap))
    rng = random.Random(f"{seed}:{total}")
    out = []
    for i in range(pages):
        size = cap // pages + (1 if i < cap % pages else 0)
        lo, hi = total * i // pages, total * (i + 1) // pages
        out.append((lo + rng.randrange(max(1, hi - lo - size + 1)), size))
    return out


def sample_cap(dims: int | None) -> int:
    """Chunks loaded for vectors of `dims` numbers: `SAMPLE_CAP`, fewer for wide vectors."""
    return max(1, min(SAMPLE_CAP, SAMPLE_FLOATS // dims)) if dims else SAMPLE_CAP


def _by_files(coll: Collection, files: Manifest, total: int, cap: int, seed: int) -> list[dict[str, Any]]:
    """A sample of whole files: random file records from the manifest, then their chunks by path,
    at most `cap` (each chunk as likely to be in it as any other, since each file is). Reading
    chunks at an offset costs Chroma time in proportion to the offset (~0.2 s a page at 200,000
    chunks); the manifest has a tenth of the rows, and chunks read by path cost what they hold."""
    budget, paths = cap, []
    for record in files.sample(cap, total, SAMPLE_PAGES, seed):
        if record.done and 0 < record.chunks <= budget:
            paths.append(record.path)
            budget -= record.chunks
    groups = [paths[i:i + _PATHS_PER_READ] for i in range(0, len(paths), _PATHS_PER_READ)]
    if not groups:
        return []

    def read(group: list[str]) -> dict[str, Any]:
        return coll.get(where={"path": {"$in": group}}, limit=cap,
                        include=["embeddings", "documents", "metadatas"])

    with ThreadPoolExecutor(max_workers=min(_READERS, len(groups))) as pool:
        got = list(pool.map(read, groups))
    kept, room = [], cap  # a record that undercounts its chunks must not take the sample past cap
    for page in got:
        n = min(room, len(page["ids"]))
        kept.append({k: page[k][:n] for k in ("ids", "documents", "metadatas", "embeddings")})
        room -= n
    return kept


def load_vectors(coll: Collection, key: tuple[Any, ...], *, cap: int | None = None,
                 seed: int = 0, files: Manifest | None = None) -> CollectionVectors:
    """The collection's chunk vectors (a seeded sample of `cap` beyond it), once per `key`.

    Only bounded reads, never the list of every id: with the collection's manifest (`files`),
    a sample of whole files (`_by_files`), else pages at random offsets. `cap` defaults to
    `sample_cap` of the dims the collection records.
    """
    cached = _VECTORS.recall(key)
    if cached is not None:
        return cached
    started = time.perf_counter()
    if cap is None:
        dims = (coll.metadata or {}).get("dims")
        cap = sample_cap(dims if isinstance(dims, int) else None)
    total = coll.count()
    if total == 0:
        raise EmptyStoreError(f"The collection {coll.name} is empty.", EmptyStoreError.default_fix)

    def page(at: tuple[int, int]) -> dict[str, Any]:
        return coll.get(limit=at[1], offset=at[0], include=["embeddings", "documents", "metadatas"])

    got_pages = None
    if total > cap and files is not None:
        got_pages = _by_files(coll, files, total, cap, seed)
    if not got_pages:
        pages = sample_offsets(total, cap, seed=seed)
        with ThreadPoolExecutor(max_workers=min(_READERS, len(pages))) as pool:
            got_pages = list(pool.map(page, pages))
    ids: list[str] = []
    texts: list[str] = []
    sources: list[str] = []
    rows: list[np.ndarray] = []
    for got in got_pages:
        ids.extend(got["ids"])
        texts.extend(d or "" for d in got["documents"])
        sources.extend(str((m or {}).get("source", "?")) for m in got["metadatas"])
        if len(got["ids"]):
            rows.append(np.asarray(got["embeddings"], dtype=np.float32))
    matrix = unit_rows(np.concatenate(rows)) if rows else np.zeros((0, 0), np.float32)
    loaded = CollectionVectors(key, ids, texts, sources, matrix, max(total, len(ids)))
    log.info("loaded %d of %d vectors of %s in %.2f s", len(ids), total, coll.name,
             time.perf_counter() - started)
    return _VECTORS.remember(key, loaded)


_NEWEST_SAMPLE: dict[tuple[Any, ...], CollectionVectors] = {}
"""The newest sample of each large collection, by (data dir, collection name)."""


def vectors_for(settings: Settings, info: EmbeddingInfo, coll: Collection, *,
                watched: bool = False) -> CollectionVectors:
    """The collection's vectors as the debug panel, `rag map` and the trust report load them:
    keyed by the collection's state, a large one sampled by whole files through its manifest.

    `watched`: a store watcher (`rag.retrieve.watch`) reads the next sample whenever the store
    changes, so until it has, the newest sample of a large collection serves. A sample of 3,000
    of a million chunks shows the same picture after another machine's 1 % change, and reading
    it costs 1-4 s on a server at that size (11 s on a server just started), which a click on
    the debug panel would otherwise wait for.
    """
    from rag.state import Manifest

    key = collection_key(settings, info, coll)
    newest = _NEWEST_SAMPLE.get(key[:2])
    if watched and newest is not None and _VECTORS.recall(key) is None:
        return newest
    loaded = load_vectors(coll, key, files=Manifest(settings, info.collection_name))
    if loaded.sampled:
        _NEWEST_SAMPLE[key[:2]] = loaded
    return loaded


def is_sampled(settings: Settings, coll: Collection) -> bool:
    """Whether the collection holds more chunks than a view loads (one count)."""
    dims = (coll.metadata or {}).get("dims")
    return coll.count() > sample_cap(dims if isinstance(dims, int) else None)


def sample_note(vectors: CollectionVectors) -> str:
    """`3,000 of 1,000,000 chunks, sampled` when the view shows a sample, else ``."""
    if not vectors.sampled:
        return ""
    return f"{len(vectors):,} of {vectors.total:,} chunks, sampled / {vectors.total:,} チャンクから {len(vectors):,} を抽出"


def nearest_chunks(coll: Collection, vectors: CollectionVectors, query: Sequence[float] | np.ndarray,
                   k: int = 5) -> list[tuple[float, str, str]]:
    """(cosine, source, text) of the k chunks nearest to `query` in the whole collection.

    Exact over the loaded matrix when it is the whole collection; the store's index when only
    a sample is loaded (the sample's nearest would not be the collection's).
    """
    if not vectors.sampled:
        return [(s, vectors.sources[r], vectors.texts[r]) for r, s in vectors.nearest(query, k)]
    q = unit_rows(np.asarray(query, dtype=np.float32))
    got = coll.query(query_embeddings=[q.tolist()], n_results=k,
                     include=["documents", "metadatas", "embeddings"])
    out = []
    for text, meta, vec in zip(got["documents"][0], got["metadatas"][0], got["embeddings"][0], strict=True):
        out.append((float(unit_rows(np.asarray(vec, dtype=np.float32)) @ q),
                    str((meta or {}).get("source", "?")), text or ""))
    return out


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
