"""The debug panel's vectors at scale: a bounded sample read by pages, said to be a sample, and
nearest chunks that are the collection's, not the sample's. Real Chroma (embedded) throughout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from rag.lens import collection, projection


class Recording:
    """A real Chroma collection that notes every `get` it answers and how many rows it returned."""

    def __init__(self, coll: Any) -> None:
        self._coll = coll
        self.gets: list[tuple[dict[str, Any], int]] = []

    def get(self, **kwargs: Any) -> Any:
        got = self._coll.get(**kwargs)
        self.gets.append((kwargs, len(got["ids"])))
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self._coll, name)


def _collection(path: Path, n: int, dims: int = 16) -> tuple[Any, np.ndarray]:
    client = chromadb.PersistentClient(str(path / "chroma"))
    coll = client.create_collection(f"sample_{n}_{dims}", metadata={"hnsw:space": "cosine", "dims": dims})
    vectors = np.random.default_rng(n).standard_normal((n, dims)).astype(np.float32)
    for start in range(0, n, 1000):
        stop = min(start + 1000, n)
        coll.add(ids=[f"c{i:05d}" for i in range(start, stop)], embeddings=vectors[start:stop].tolist(),
                 documents=[f"text {i}" for i in range(start, stop)],
                 metadatas=[{"source": f"doc{i // 10}.md", "path": f"/d/doc{i // 10}.md"} for i in range(start, stop)])
    return coll, vectors


def test_a_large_collection_is_sampled_by_bounded_pages(tmp_path: Path) -> None:
    coll, _ = _collection(tmp_path, 2500)
    recorded = Recording(coll)
    loaded = collection.load_vectors(recorded, ("t", "large"), cap=300)
    assert len(loaded) == 300 and loaded.total == 2500 and loaded.sampled
    assert len(set(loaded.ids)) == 300 and loaded.matrix.shape == (300, 16)
    # never the list of every id, never more rows than the cap, every read bounded by a limit
    assert all(kw.get("limit") is not None and kw["limit"] <= 300 for kw, _ in recorded.gets), recorded.gets
    assert sum(rows for _, rows in recorded.gets) == 300
    assert 1 < len(recorded.gets) <= collection.SAMPLE_PAGES
    # spread over the whole collection, not its first rows
    numbers = sorted(int(i[1:]) for i in loaded.ids)
    assert numbers[0] < 250 and numbers[-1] >= 2250
    assert np.allclose(np.linalg.norm(loaded.matrix, axis=1), 1.0, atol=1e-5)
    assert collection.sample_note(loaded).startswith("300 of 2,500 chunks, sampled")
    # the same collection state gives the same sample (maps and percentiles stay put)
    again = collection.load_vectors(coll, ("t", "large-again"), cap=300)
    assert again.ids == loaded.ids


def test_a_small_collection_is_loaded_whole_and_not_called_a_sample(tmp_path: Path) -> None:
    coll, vectors = _collection(tmp_path, 250)
    loaded = collection.load_vectors(coll, ("t", "small"), cap=300)
    assert sorted(loaded.ids) == [f"c{i:05d}" for i in range(250)] and not loaded.sampled
    assert collection.sample_note(loaded) == ""
    query = vectors[7]
    near = collection.nearest_chunks(coll, loaded, query, 3)
    assert near[0][2] == "text 7" and near[0][0] == pytest.approx(1.0, abs=1e-5)


def test_nearest_chunks_of_a_sample_are_the_collections_nearest(tmp_path: Path) -> None:
    coll, vectors = _collection(tmp_path, 2500)
    loaded = collection.load_vectors(coll, ("t", "nearest"), cap=300)
    outside = next(i for i in range(2500) if loaded.row(f"c{i:05d}") is None)
    near = collection.nearest_chunks(coll, loaded, vectors[outside], 5)
    assert near[0][2] == f"text {outside}" and near[0][1] == f"doc{outside // 10}.md"
    assert near[0][0] == pytest.approx(1.0, abs=1e-4)
    cosines = [c for c, _, _ in near]
    assert cosines == sorted(cosines, reverse=True)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    best = np.sort(unit @ unit[outside])[::-1][:5]
    assert np.allclose(cosines, best, atol=1e-3)  # what an exact search over every chunk gives


@pytest.mark.parametrize("total", [1, 299, 300, 301, 2500, 1_000_000])
def test_sample_pages_never_overlap_and_read_exactly_the_cap(total: int) -> None:
    pages = collection.sample_offsets(total, 300, pages=10, seed=3)
    rows = sorted((o, o + n) for o, n in pages)
    assert sum(n for _, n in pages) == min(total, 300)
    assert all(0 <= a < b <= total for a, b in rows)
    assert all(b <= c for (_, b), (c, _) in zip(rows, rows[1:], strict=False))


def test_the_sample_is_what_a_map_draws_and_wide_vectors_get_fewer(tmp_path: Path) -> None:
    assert collection.SAMPLE_CAP == projection.MAX_POINTS
    assert collection.sample_cap(384) == collection.SAMPLE_CAP and collection.sample_cap(None) == collection.SAMPLE_CAP
    assert collection.sample_cap(1536) == 750 and collection.sample_cap(512) == 2250
    coll, _ = _collection(tmp_path, 1200, dims=1536)  # the collection records its dims, as ours do
    loaded = collection.load_vectors(coll, ("t", "wide"))
    assert len(loaded) == 750 and loaded.total == 1200 and loaded.matrix.shape == (750, 1536)


def test_a_store_with_a_manifest_is_sampled_by_whole_files(settings) -> None:
    """Files of 1 to 20 chunks, written as an ingest writes them (chunks, then file records)."""
    from rag import store
    from rag.embed.providers import EmbeddingInfo
    from rag.state import FileRecord, Manifest

    info = EmbeddingInfo("openai", "text-embedding-3-small", 8, "test")
    coll = store.collection(settings, info)
    rng = np.random.default_rng(0)
    sizes = {f"/d/f{i:04d}.md": int(rng.integers(1, 21)) for i in range(400)}
    ids, metas = [], []
    for path, n in sizes.items():
        ids += [f"{path}#{c}" for c in range(n)]
        metas += [{"path": path, "source": path[3:], "chunk": c} for c in range(n)]
    vectors = rng.standard_normal((len(ids), 8)).astype(np.float32)
    for start in range(0, len(ids), 1000):
        coll.add(ids=ids[start:start + 1000], embeddings=vectors[start:start + 1000].tolist(),
                 metadatas=metas[start:start + 1000], documents=ids[start:start + 1000])
    Manifest(settings, info.collection_name).put(
        [FileRecord(p, p[3:], "d", "f", n) for p, n in sizes.items()])
    recorded = Recording(coll)
    loaded = collection.load_vectors(recorded, ("t", "files"), cap=300,
                                     files=Manifest(settings, info.collection_name))
    assert 250 <= len(loaded) <= 300 and loaded.total == len(ids) and loaded.sampled
    assert all(kw.get("where") and kw.get("limit") == 300 for kw, _ in recorded.gets)  # by path, bounded
    assert sum(rows for _, rows in recorded.gets) == len(loaded)
    per_file: dict[str, int] = {}
    for id_ in loaded.ids:
        per_file[id_.split("#")[0]] = per_file.get(id_.split("#")[0], 0) + 1
    assert all(per_file[p] == sizes[p] for p in per_file)  # whole files
    numbers = sorted(int(p[4:8]) for p in per_file)
    assert numbers[0] < 80 and numbers[-1] >= 320  # from across the store, not its first files
    assert collection.sample_note(loaded).startswith(f"{len(loaded)} of {len(ids):,} chunks, sampled")
    again = collection.vectors_for(settings, info, coll)  # the app's way: the same kind of sample
    assert again.sampled and collection.SAMPLE_CAP - 20 <= len(again) <= collection.SAMPLE_CAP < len(ids)
