"""How long a map takes and what it keeps: PCA, t-SNE and UMAP of up to 5,000 unit vectors.

Synthetic, seeded data shaped like text-embedding-3-small output (unit vectors around topic
centres). Prints seconds per method, PCA against scikit-learn's PCA as a baseline in the same
process, and the cost of placing a new query on a cached PCA map.

    .venv/bin/python bench/projection.py            # n=5000, t-SNE/UMAP on 1000
    .venv/bin/python bench/projection.py --quick    # n=2000, t-SNE/UMAP on 500
    .venv/bin/python bench/projection.py --maps     # what the app does: each method's first map
                                                    # in a fresh process (UMAP with a cold and a
                                                    # warm numba cache), then every method x dims
                                                    # x n (156 real e5 vectors, 1,000 and 3,000
                                                    # synthetic) with the new settings beside the
                                                    # old ones, their neighbour agreement, and a
                                                    # switch between prefetched maps
    .venv/bin/python bench/projection.py --maps --no-old --sizes 3000   # the new settings only

Times are wall seconds and, beside them, CPU seconds of this process: on a shared machine the
wall time grows with the load, the CPU time much less (the new fits run on one core, so their CPU
time is about their wall time on an idle machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.lens import collection, projection  # noqa: E402


def clustered(n: int, dims: int, topics: int = 40, spread: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dims))
    m = centres[rng.integers(0, topics, n)] + spread * rng.standard_normal((n, dims))
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def timed_cpu(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def manifold(n: int, dims: int = 512, topics: int = 24, latent: int = 4, seed: int = 0) -> np.ndarray:
    """Unit vectors with neighbours worth keeping: topic centres, each topic a 4-d sheet plus noise.

    `clustered` points are isotropic noise around their centre, so no map can keep their nearest
    neighbours (they are arbitrary); text embeddings vary along few directions within a topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dims))
    sheets = rng.standard_normal((topics, latent, dims))
    topic = rng.integers(0, topics, n)
    m = (centres[topic] + 0.5 * np.einsum("nl,nld->nd", rng.standard_normal((n, latent)), sheets[topic])
         + 0.3 * rng.standard_normal((n, dims)))
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def bundled() -> np.ndarray:
    """The bundled corpus's 156 real e5 vectors (what a first start maps)."""
    return np.load(ROOT / "rag" / "data" / "e5-docs_corpus.npz")["vectors"].astype(np.float32)


def old_project(matrix: np.ndarray, method: str, dims: int, seed: int = 0) -> np.ndarray:
    """The settings before this round, kept here as the baseline: openTSNE's own neighbour search
    (Annoy) on 50 PCA axes, perplexity 30, 125 + 375 iterations, FFT in 2-D, one job per core;
    UMAP with its own distance matrix, 200 epochs; BLAS with all its threads."""
    n = matrix.shape[0]
    if method == "pca" or n <= dims + 1:
        return projection.pca(matrix, dims, seed).transform(matrix)
    reduced = projection._reduced(matrix, seed)
    if method == "tsne":
        from openTSNE import TSNE

        gradient = "fft" if dims <= 2 and n >= 200 else "bh"
        return np.asarray(TSNE(n_components=dims, perplexity=float(max(1.0, min(30.0, (n - 1) / 3))),
                               n_iter=375, early_exaggeration_iter=125, negative_gradient_method=gradient,
                               n_jobs=os.cpu_count() or 1, random_state=seed, verbose=False).fit(reduced))
    import warnings

    umap = projection._import_umap()
    reducer = umap.UMAP(n_components=dims, metric="cosine", n_neighbors=max(2, min(15, n - 1)),
                        random_state=seed, init="random" if n < 10 else "spectral", n_epochs=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(reduced))


def maps(sizes: tuple[int, ...] = (156, 1000, 3000), old: bool = True, trust_up_to: int = 1000) -> None:
    """Every method x dims x n, new settings beside the old ones, each fitted in this process after
    a warm-up (imports and numba loaded: the first use in a fresh process is `first_use`)."""
    from rag.lens import map_truth

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; target: any map of "
          "<= 3,000 points in <= 3 s after the first use")
    print("wall and CPU seconds; x3s = wall / 3 s (CPU / 3 s in brackets: the new fits use one "
          "core, so their CPU time is about their wall time on an idle machine); nn@5 = share of "
          "each point's 5 nearest on the map that are among its 5 nearest by cosine; trust = "
          "scikit-learn's trustworthiness (k=5)")
    methods = ["pca", "tsne"] + (["umap"] if projection.umap_available() else [])
    warm = manifold(80, 32)
    for method in methods:  # imports, numba's cached code, BLAS threads: paid once per process
        projection.project(warm, method, 2)
        if old:
            old_project(warm, method, 2)
    for n in sizes:
        m = bundled() if n == 156 else manifold(n)
        label = "bundled e5" if n == 156 else "manifold, 512-d"
        for method in methods:
            for dims in (2, 3):
                runs = [("new", partial(projection.project, m, method, dims))]
                if old:
                    runs.append(("old", partial(old_project, m, method, dims)))
                for name, fit in runs:
                    out: list[np.ndarray] = []
                    wall, cpu = timed_cpu(lambda fit=fit, out=out: out.append(fit()))
                    nn = map_truth.neighbour_agreement(m, out[0], k=5)
                    trust = "-    "
                    if n <= trust_up_to:
                        from sklearn.manifold import trustworthiness

                        trust = f"{trustworthiness(m, out[0], n_neighbors=5, metric='cosine'):.3f}"
                    print(f"n={n:5d} ({label:15s}) {method:4s} {dims}-D {name}: {wall:6.2f} s wall "
                          f"{cpu:6.2f} s CPU  x3s {wall / 3:5.2f} ({cpu / 3:4.2f})  nn@5 {nn:.3f}  "
                          f"trust {trust}", flush=True)


def switches(n: int = 3000) -> None:
    """A switch between maps already fitted (the app's method/dims clicks after a prefetch)."""
    m = manifold(n)
    ids = [str(i) for i in range(n)]
    vectors = collection.CollectionVectors(("bench", uuid.uuid4().hex), ids, ids,
                                           [f"s{i % 24}" for i in range(n)], m, n)
    started = time.perf_counter()
    thread = projection.prefetch(vectors)
    if thread is not None:
        thread.join()
    print(f"prefetch of all {len(projection.PREFETCH_ORDER)} maps of {n} points in the background: "
          f"{time.perf_counter() - started:.1f} s wall")
    for method, dims in projection.PREFETCH_ORDER:
        if method == "umap" and not projection.umap_available():
            continue
        data = projection.build_map(vectors, method=method, dims=dims, query=m[1])
        print(f"switch to {method} {dims}-D with a new query: {data.seconds * 1000:6.1f} ms "
              f"(cached={data.cached}; x0.5s {data.seconds / 0.5:.3f})")


def first_use(n: int = 3000) -> None:
    """Each method's first map in a fresh process (imports; UMAP also numba's cache, empty then filled)."""
    import subprocess
    import tempfile

    code = ("import sys, time; sys.path.insert(0, 'bench'); t = time.perf_counter(); "
            "from projection import manifold; from rag.lens import projection; "
            f"projection.project(manifold({n}), sys.argv[1], 2); "
            "print(f'{time.perf_counter() - t:.1f}')")
    methods = ["pca", "tsne"] + (["umap"] if projection.umap_available() else [])
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "RAG_DATA_DIR": data}
        env.pop("NUMBA_CACHE_DIR", None)
        for method in methods:
            labels = ("cold numba cache", "warm numba cache") if method == "umap" else ("",)
            for label in labels:
                out = subprocess.run([sys.executable, "-c", code, method], env=env, capture_output=True,
                                     text=True, check=True, cwd=ROOT).stdout.strip()
                print(f"first {method} 2-D map of {n} points in a fresh process"
                      f"{', ' + label if label else ''}: {out} s (x3s {float(out) / 3:.2f})", flush=True)
        cache = Path(data) / "numba-cache"
        files = sum(1 for _ in cache.rglob("*")) if cache.exists() else 0
        print(f"numba cache under the data dir: {files} files in {cache}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--small", type=int, default=1000, help="points for t-SNE and UMAP")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--maps", action="store_true", help="the app's maps (see the docstring)")
    parser.add_argument("--no-old", action="store_true", help="with --maps: skip the old settings")
    parser.add_argument("--sizes", default="156,1000,3000", help="with --maps: points per map")
    args = parser.parse_args()
    if args.maps:
        first_use()
        maps(tuple(int(x) for x in args.sizes.split(",")), old=not args.no_old)
        switches()
        return
    if args.quick:
        args.n, args.small = 2000, 500
    m = clustered(args.n, args.dims)
    print(f"data: {args.n} x {args.dims} clustered unit vectors (float32, seed 0)")

    projection.project(m[:50], "pca", 2)  # warm up BLAS threads
    ours = timed(lambda: projection.project(m, "pca", 2), repeat=3)
    print(f"PCA 2-D (rag.lens.vectors, numpy randomized SVD): {ours:.3f} s")
    ours3 = timed(lambda: projection.project(m, "pca", 3), repeat=3)
    print(f"PCA 3-D (rag.lens.vectors):                       {ours3:.3f} s")

    from sklearn.decomposition import PCA

    base = timed(lambda: PCA(n_components=2, random_state=0).fit_transform(m), repeat=3)
    print(f"PCA 2-D (scikit-learn, baseline):            {base:.3f} s  -> ours is {base / ours:.1f}x")

    ids = [str(i) for i in range(args.n)]
    vectors = collection.CollectionVectors(("bench", uuid.uuid4().hex), ids, ids, ["s"] * args.n, m, args.n)
    first = timed(lambda: projection.build_map(vectors, max_points=args.n))
    query = m[0]
    placed = timed(lambda: projection.build_map(vectors, query=query, max_points=args.n), repeat=5)
    print(f"build_map PCA, all {args.n} points: first {first:.3f} s, "
          f"cached + new query {placed * 1000:.1f} ms")
    capped = collection.CollectionVectors(("bench", uuid.uuid4().hex), ids, ids, ["s"] * args.n, m, args.n)
    cap = timed(lambda: projection.build_map(capped, max_points=projection.MAX_POINTS))
    print(f"build_map PCA, sampled to {projection.MAX_POINTS}: {cap:.3f} s")

    small = m[: args.small]
    tsne = timed(lambda: projection.project(small, "tsne", 2))
    print(f"t-SNE 2-D on {args.small} points:                 {tsne:.2f} s")
    if projection.umap_available():
        projection.project(small[:50], "umap", 2)  # numba compiles on first use
        umap_s = timed(lambda: projection.project(small, "umap", 2))
        print(f"UMAP 2-D on {args.small} points (after JIT warm-up): {umap_s:.2f} s")
    else:
        print(f"UMAP: not installed ({projection.UMAP_INSTALL})")


if __name__ == "__main__":
    main()
