"""How long a map takes: PCA of 5,000 x 1,536 clustered unit vectors, t-SNE (and UMAP) on fewer.

Synthetic, seeded data shaped like text-embedding-3-small output (unit vectors around topic
centres). Prints seconds per method, PCA against scikit-learn's PCA as a baseline in the same
process, and the cost of placing a new query on a cached PCA map.

    .venv/bin/python bench/projection.py            # n=5000, t-SNE/UMAP on 1000
    .venv/bin/python bench/projection.py --quick    # n=2000, t-SNE/UMAP on 500
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np

from rag.lens import collection, projection


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--small", type=int, default=1000, help="points for t-SNE and UMAP")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
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
