"""How long a map takes: PCA of 5,000 x 1,536 clustered unit vectors, t-SNE (and UMAP) on fewer.

Synthetic, seeded data shaped like text-embedding-3-small output (unit vectors around topic
centres). Prints seconds per method, PCA against scikit-learn's PCA as a baseline in the same
process, and the cost of placing a new query on a cached PCA map.

    .venv/bin/python bench/projection.py            # n=5000, t-SNE/UMAP on 1000
    .venv/bin/python bench/projection.py --quick    # n=2000, t-SNE/UMAP on 500
    .venv/bin/python bench/projection.py --maps     # what the app does: every map of 156 and 3,000
                                                    # 512-d points, first fit and cached switch,
                                                    # and UMAP's first use with a cold and a warm
                                                    # numba cache (fresh processes)

Times are wall seconds and, beside them, CPU seconds of this process: on a shared machine the
wall time grows with the load, the CPU time much less (CPU / cores is about the unloaded wall time).
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


def maps(sizes: tuple[int, ...] = (156, 3000), dims_in: int = 512) -> None:
    """Every method and dimension as the app asks for them: a first fit, then a cached switch."""
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          "target: first fit <= 3 s for <= 3,000 points, cached switch <= 0.5 s")
    methods = ["pca", "tsne"] + (["umap"] if projection.umap_available() else [])
    if "umap" in methods:
        wall, cpu = timed_cpu(lambda: projection.project(clustered(60, 8), "umap", 2))
        print(f"UMAP warm-up in this process (import + numba, cache dir "
              f"{os.environ.get('NUMBA_CACHE_DIR', '-')}): {wall:.1f} s wall, {cpu:.1f} s CPU")
    for n in sizes:
        m = clustered(n, dims_in, topics=24)
        ids = [str(i) for i in range(n)]
        vectors = collection.CollectionVectors(("bench", uuid.uuid4().hex), ids, ids,
                                               [f"s{i % 24}" for i in range(n)], m, n)
        for method in methods:
            for dims in (2, 3):
                fit = partial(projection.build_map, vectors, method=method, dims=dims,
                              max_points=max(n, 3000))
                wall, cpu = timed_cpu(partial(fit, query=m[0]))
                again = fit(query=m[1])
                print(f"n={n:5d} {method:4s} {dims}-D: first {wall:6.2f} s wall ({cpu:6.2f} s CPU), "
                      f"new query / switch back {again.seconds * 1000:6.1f} ms "
                      f"(cached={again.cached})", flush=True)


def umap_first_use() -> None:
    """UMAP's first use in a fresh process, with an empty numba cache and then with a filled one."""
    import subprocess
    import tempfile

    code = ("import time, numpy as np; t = time.perf_counter(); "
            "from rag.lens import projection; "
            "projection.project(np.random.default_rng(0).standard_normal((300, 64)).astype('f4'), "
            "'umap', 2); print(f'{time.perf_counter() - t:.1f}')")
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "RAG_DATA_DIR": data}
        env.pop("NUMBA_CACHE_DIR", None)
        for label in ("cold numba cache", "warm numba cache"):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True, cwd=ROOT).stdout.strip()
            print(f"UMAP first use in a fresh process, {label}: {out} s")
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
    args = parser.parse_args()
    if args.maps:
        if projection.umap_available():
            umap_first_use()
        maps()
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
