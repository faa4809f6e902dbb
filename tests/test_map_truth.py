"""The map tells the truth about itself: variance per PCA axis, true against drawn neighbours,
finding points by source or text — on a real collection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.config import get_settings
from rag.embed.providers import resolve
from rag.ingest.pipeline import Ingestor
from rag.lens import collection, map_truth, projection
from rag.lens.collection import CollectionVectors, unit_rows


def toy(n: int = 40, d: int = 16, seed: int = 1) -> CollectionVectors:
    rng = np.random.default_rng(seed)
    m = unit_rows(rng.standard_normal((n, d)).astype(np.float32))
    ids = [f"c{i}" for i in range(n)]
    return CollectionVectors(("toy", n), ids, [f"text {i}" for i in range(n)],
                             [f"s{i % 4}.md" for i in range(n)], m, n)


def test_variance_shares_are_pcas_and_add_up_to_at_most_one() -> None:
    vectors = toy()
    shares = map_truth.explained_variance(vectors, 3)
    x = vectors.matrix.astype(np.float64)
    singular = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    expected = singular ** 2 / (singular ** 2).sum()
    assert shares == pytest.approx(expected[:3].tolist(), rel=1e-4)
    assert shares[0] >= shares[1] >= shares[2] and sum(shares) < 1


def test_neighbours_in_the_full_space_are_exact_and_the_map_ones_are_by_drawn_distance() -> None:
    vectors = toy()
    data = projection.build_map(vectors, method="pca", dims=2)
    near = map_truth.neighbourhood(vectors, data, "c0", k=5)
    assert near is not None and near.point.id == "c0"
    cos = vectors.matrix @ vectors.matrix[0]
    truth = [vectors.ids[i] for i in np.argsort(-cos)[1:6]]
    assert [n.id for n in near.in_space] == truth
    assert [n.cosine for n in near.in_space] == pytest.approx(sorted(cos[1:], reverse=True)[:5], rel=1e-5)
    drawn = {p.id: np.array([p.x, p.y]) for p in data.points}
    dist = {i: float(np.linalg.norm(v - drawn["c0"])) for i, v in drawn.items() if i != "c0"}
    assert [n.id for n in near.on_map] == sorted(dist, key=dist.get)[:5]
    assert near.shared == len(set(truth) & {n.id for n in near.on_map})
    assert map_truth.neighbourhood(vectors, data, "nope") is None


def test_find_points_by_source_or_text() -> None:
    data = projection.build_map(toy(), method="pca", dims=2)
    assert {p.source for p in map_truth.find_points(data, "S1.MD")} == {"s1.md"}
    assert [p.id for p in map_truth.find_points(data, "text 17")] == ["c17"]
    assert map_truth.find_points(data, "  ") == []


def test_on_a_real_collection_the_map_loses_neighbours(corpus: Path, local_model) -> None:
    settings = get_settings()
    assert not Ingestor(settings).ingest([corpus]).failed
    info = resolve(settings)
    coll = store.collection(settings, info)
    vectors = collection.load_vectors(coll, collection.collection_key(settings, info, coll))
    data = projection.build_map(vectors, method="pca", dims=2)
    chosen = vectors.ids[0]
    near = map_truth.neighbourhood(vectors, data, chosen, k=3)
    assert near is not None and len(near.in_space) == 3 and len(near.on_map) == 3
    assert all(-1 <= n.cosine <= 1 for n in near.in_space + near.on_map)
    assert 0 < sum(map_truth.explained_variance(vectors, 2)) < 1
