"""How maps are fitted: exact neighbours, maps that keep them, one fit per map even when a click
and the background prefetch ask at once, and BLAS threads given back afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.lens import map_truth, projection
from rag.lens.collection import CollectionVectors, unit_rows

BUNDLED = Path(rag.__file__).parent / "data" / "e5-docs_corpus.npz"


def bundled_vectors() -> np.ndarray:
    """The bundled corpus's 156 real e5 vectors: a collection with the structure real text has."""
    return np.load(BUNDLED)["vectors"].astype(np.float32)


def as_collection(m: np.ndarray, tag: str) -> CollectionVectors:
    ids = [f"c{i}" for i in range(len(m))]
    return CollectionVectors((tag, len(m)), ids, [f"text {i}" for i in ids],
                             [f"s{i % 5}.md" for i in range(len(m))], m, len(m))


def test_nearest_neighbours_are_the_exact_cosine_ranking() -> None:
    rng = np.random.default_rng(3)
    m = rng.standard_normal((60, 12)).astype(np.float32) * rng.uniform(0.5, 3, (60, 1)).astype(np.float32)
    rows, sims = projection.nearest_neighbours(m, 7)
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)
    full = unit @ unit.T
    for i in range(len(m)):
        expected = [j for j in np.argsort(-full[i]) if j != i][:7]
        assert rows[i].tolist() == expected
        assert sims[i] == pytest.approx(full[i, expected], abs=1e-5)
    # fewer rows than asked: every other row, never the row itself
    rows, _ = projection.nearest_neighbours(m[:4], 10)
    assert rows.shape == (4, 3) and all(i not in r for i, r in enumerate(rows.tolist()))


def test_neighbour_agreement_is_one_for_a_faithful_map_and_low_for_a_random_one() -> None:
    angles = np.random.default_rng(0).uniform(0, np.pi / 2, 200)
    m = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    assert map_truth.neighbour_agreement(m, m, k=5) == 1.0
    scrambled = np.random.default_rng(1).standard_normal((200, 2))
    assert map_truth.neighbour_agreement(m, scrambled, k=5) < 0.2


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
@pytest.mark.parametrize("dims", [2, 3])
def test_nonlinear_maps_keep_most_true_neighbours_of_a_real_collection(method: str, dims: int) -> None:
    if method == "umap" and not projection.umap_available():
        pytest.fail(f"umap-learn is part of the dev install: {projection.UMAP_INSTALL}")
    m = bundled_vectors()
    drawn = projection.project(m, method, dims)
    agreement = map_truth.neighbour_agreement(m, drawn, k=5)
    linear = map_truth.neighbour_agreement(m, projection.project(m, "pca", dims), k=5)
    # measured: t-SNE 0.60/0.67, UMAP 0.56/0.58 against PCA 0.19/0.25 (2-D/3-D)
    assert agreement >= 0.45 and agreement > linear + 0.2, (agreement, linear)


def test_prefetch_fits_every_map_once_and_a_click_meanwhile_shares_its_fit() -> None:
    m = unit_rows(np.random.default_rng(7).standard_normal((300, 24)).astype(np.float32))
    vectors = as_collection(m, f"prefetch-{id(m)}")
    methods = ("pca", "tsne")
    thread = projection.prefetch(vectors, methods=methods)
    assert thread is not None
    assert projection.prefetch(vectors, methods=methods) is None  # one prefetch per collection
    clicked: list[projection.MapData] = []
    click = threading.Thread(target=lambda: clicked.append(
        projection.build_map(vectors, method="tsne", dims=2)))
    click.start()
    click.join(120)
    thread.join(120)
    assert not thread.is_alive() and clicked
    for method in methods:
        for dims in (2, 3):
            again = projection.build_map(vectors, method=method, dims=dims)
            assert again.cached, (method, dims)
    # the click and the prefetch drew the same fit, not two
    later = projection.build_map(vectors, method="tsne", dims=2)
    assert [(p.x, p.y) for p in later.points] == [(p.x, p.y) for p in clicked[0].points]
    assert projection.prefetch(vectors, methods=methods) is None  # nothing left to fit


def test_blas_threads_are_given_back_after_overlapping_fits() -> None:
    from threadpoolctl import threadpool_info

    def threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info()]

    before = threads()
    with projection.one_thread():
        assert all(n == 1 for n in threads())
        inner_done = threading.Event()

        def overlap() -> None:
            with projection.one_thread():
                inner_done.set()

        worker = threading.Thread(target=overlap)
        worker.start()
        worker.join()
        assert inner_done.is_set() and all(n == 1 for n in threads())  # the first fit still runs
    assert threads() == before


@pytest.mark.slow
def test_umaps_compiled_code_is_cached_in_the_data_dir_not_recompiled_per_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    if not projection.umap_available():
        pytest.fail(f"umap-learn is part of the dev install: {projection.UMAP_INSTALL}")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["RAG_DATA_DIR"] = str(tmp_path / "data")
    code = ("import numpy as np; from rag.lens import projection; "
            "projection.project(np.random.default_rng(0).standard_normal((60, 8)).astype('f4'), 'umap', 2)")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(rag.__file__).parent.parent)
    cache = tmp_path / "data" / "numba-cache"
    names = {p.name.split("-")[0] for p in cache.rglob("*.nbi")}
    # umap-learn jits these without cache=True: before, every new process compiled them again
    assert {"layouts._optimize_layout_euclidean_single_epoch", "umap_.smooth_knn_dist",
            "umap_.compute_membership_strengths"} <= names, sorted(names)


def test_a_3d_map_is_one_chunk_trace_coloured_by_source_and_the_offline_page_keeps_a_legend() -> None:
    from rag.lens import plots

    m = bundled_vectors()
    vectors = as_collection(m, "colours")
    data = projection.build_map(vectors, method="pca", dims=3)
    colours = plots.source_colours(data)
    fig = plots.projection(data)
    chunk_traces = [t for t in fig.data if t.name not in ("hits", "query", "query → hits")]
    assert len(chunk_traces) == 1
    drawn = {p.source: c for p, c in zip((p for p in data.points if p.kind != "query"),
                                         chunk_traces[0].marker.color, strict=True)}
    assert drawn == colours and len(set(colours.values())) == len(colours) == 5
    offline = plots.projection(data, legend_3d=True)
    assert sorted(t.name for t in offline.data) == sorted(colours)
