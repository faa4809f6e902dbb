"""Fusion methods for hybrid retrieval, compared on the SQuAD-format dev sets.

For each question, `rag.retrieve.hybrid.candidate_pool` collects the candidate pool once (the union of
the top `--candidates` of each index, every candidate with its cosine, its BM25 score and ranks);
the methods below then re-rank that same pool, so they differ only in how they fuse. Prints
R@1, R@5, MRR@10 per method and weight, beside vector and BM25 alone. Uses the eval collection
`rag eval` builds (built here if missing) under --data-dir.

    .venv/bin/python bench/hybrid_fusion.py /work/shared/eval/jsquad-dev.json --max-questions 1000
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

Fusion = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 1e-12 else np.ones_like(x)


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def _maxed(x: np.ndarray) -> np.ndarray:
    return x / x.max() if x.max() > 0 else np.zeros_like(x)


def methods(weights: list[float]) -> dict[str, Fusion]:
    out: dict[str, Fusion] = {
        "vector only": lambda c, b, vr, br: c,
        "bm25 only": lambda c, b, vr, br: b + 1e-9 * c,
    }
    for k in (10, 60):
        for w in weights:
            out[f"rrf k={k} w={w}"] = (
                lambda c, b, vr, br, k=k, w=w:
                w * np.where(vr > 0, 1 / (k + vr), 0) + (1 - w) * np.where(br > 0, 1 / (k + br), 0)
            )
    for w in weights:
        out[f"score minmax(cos)+bm25/max w={w}"] = (
            lambda c, b, vr, br, w=w: w * _minmax(c) + (1 - w) * _maxed(b))
        out[f"score minmax both w={w}"] = (
            lambda c, b, vr, br, w=w: w * _minmax(c) + (1 - w) * _minmax(b))
        out[f"score z both w={w}"] = lambda c, b, vr, br, w=w: w * _z(c) + (1 - w) * _z(b)
        out[f"score cos+bm25/max w={w}"] = lambda c, b, vr, br, w=w: w * c + (1 - w) * _maxed(b)
    return out


def pools(path: Path, data_dir: Path, max_questions: int | None, seed: int, candidates: int):
    """(gold index in pool or -1, cos, bm25, vector rank, bm25 rank) per sampled question."""
    from rag.config import Settings
    from rag.embed.providers import resolve
    from rag.evaluate import ensure_collection, eval_info, load, sample
    from rag.retrieve import bm25
    from rag.retrieve.hybrid import candidate_pool
    from rag.retrieve.searcher import Searcher

    settings = Settings(data_dir=data_dir, hybrid_candidates=candidates)
    dataset = load(path)
    info = eval_info(resolve(settings), dataset.digest)
    ensure_collection(settings, info, dataset)
    searcher = Searcher(settings, info)
    questions = sample(dataset.questions, max_questions, seed)
    warm = getattr(searcher.embeddings, "embed_queries", searcher.embeddings.embed_documents)
    warm([q.text for q in questions])  # e5 reads questions as `query: `
    index = bm25.index_for(settings, searcher.collection)
    out = []
    for q in questions:
        qv = searcher.embeddings.embed_query(q.text)
        hits = candidate_pool(searcher.collection, index, index.scores(q.text), qv, candidates, None, None)
        sources = [h.source for h in hits]
        out.append((
            sources.index(q.gold) if q.gold in sources else -1,
            np.array([h.score for h in hits]),
            np.array([h.bm25_score or 0.0 for h in hits]),
            np.array([h.vector_rank or 0 for h in hits]),
            np.array([h.bm25_rank or 0 for h in hits]),
        ))
    return out


def score(pool, fusion: Fusion) -> dict[str, float]:
    ranks = []
    for gold, c, b, vr, br in pool:
        if gold < 0:
            ranks.append(None)
            continue
        fused = fusion(c, b, vr, br)
        # rank of gold: 1 + candidates strictly better (ties broken by vector rank, as the library does)
        better = np.sum(fused > fused[gold]) + np.sum((fused == fused[gold]) & (np.where(vr > 0, vr, 10**6) < (vr[gold] or 10**6)))
        ranks.append(int(better) + 1)
    n = len(ranks)
    return {
        "R@1": sum(1 for r in ranks if r == 1) / n,
        "R@5": sum(1 for r in ranks if r and r <= 5) / n,
        "R@10": sum(1 for r in ranks if r and r <= 10) / n,
        "MRR@10": sum(1 / r for r in ranks if r and r <= 10) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--max-questions", type=int, default=None, help="per file (XQuAD has 632)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, default=Path(".bench-data/eval"))
    parser.add_argument("--weights", default="0.5,0.4,0.3,0.25,0.2,0.15,0.1",
                        help="vector weights to try, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for path in args.files:
        limit = args.max_questions if "jsquad" in path.name else None
        pool = pools(path, args.data_dir, limit, args.seed, args.candidates)
        for name, fusion in methods(weights).items():
            table.setdefault(name, {})[path.stem] = score(pool, fusion)
    names = [p.stem for p in args.files]
    print(f"{'method':<36}" + "".join(f"{n:>30}" for n in names))
    print(f"{'':<36}" + "".join(f"{'R@1    R@5    R@10   MRR@10':>30}" for _ in names))
    for method, per_set in table.items():
        print(f"{method:<36}" + "".join(
            "  {R@1:.4f} {R@5:.4f} {R@10:.4f} {MRR@10:.4f}".format(**per_set[n]) for n in names))
    if args.json:
        print(json.dumps(table))


if __name__ == "__main__":
    main()
