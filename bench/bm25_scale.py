"""BM25 at scale: build, persist, reload, refresh and query an index of N synthetic chunks.

Chunks are ~400-character mixes of real sentences from `docs_corpus/` (Japanese and English,
seeded), so the vocabulary and term statistics look like the bundled corpus at a larger size.
Measures `rag.retrieve.bm25` directly (no Chroma): tokenizing throughput, weight build, .npz save/load,
a refresh that keeps 99% of the chunks, query latency, and peak RSS.

    .venv/bin/python bench/bm25_scale.py --chunks 100000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sentences() -> list[str]:
    out: list[str] = []
    for path in sorted((REPO / "docs_corpus").rglob("*")):
        if path.suffix in {".md", ".txt"}:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                text = path.read_bytes().decode("cp932", errors="replace")
            out += [s.strip() for s in re.split(r"(?<=[。．.!?！？])\s*|\n+", text) if len(s.strip()) > 8]
    return out


def chunks(n: int, seed: int = 0) -> list[str]:
    pool = sentences()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        parts, size = [], 0
        while size < 400:
            s = rng.choice(pool)
            parts.append(s)
            size += len(s)
        out.append(f"#{i} " + " ".join(parts))  # the number keeps every chunk distinct
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    from rag.retrieve.bm25 import BM25Index, TermCounts

    texts = chunks(args.chunks)
    ids = [f"c{i}" for i in range(len(texts))]
    figures: dict[str, float] = {"chunks": len(texts), "chars": sum(map(len, texts))}

    t0 = time.perf_counter()
    counts = TermCounts.from_texts(ids, texts)
    figures["tokenize_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = BM25Index(counts)
    figures["weights_s"] = time.perf_counter() - t0
    figures["terms"] = len(counts.vocab)
    figures["postings"] = int(counts.tf.nnz)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        t0 = time.perf_counter()
        counts.save(path, 1, "bench")
        figures["save_s"] = time.perf_counter() - t0
        figures["file_mb"] = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        loaded, _ = TermCounts.load(path, "bench")
        BM25Index(loaded)
        figures["load_and_weights_s"] = time.perf_counter() - t0

    keep = ids[: int(len(ids) * 0.99)]
    fresh = chunks(len(ids) - len(keep), seed=1)
    t0 = time.perf_counter()
    new = TermCounts.from_texts([f"n{i}" for i in range(len(fresh))], fresh, vocab=counts.vocab)
    BM25Index(counts.merged(keep, new))
    figures["refresh_1pct_s"] = time.perf_counter() - t0

    rng = random.Random(2)
    pool = sentences()
    latencies = []
    for _ in range(args.queries):
        query = rng.choice(pool)[:60]
        t0 = time.perf_counter()
        index.top(query, 50)
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    figures["query_p50_ms"] = statistics.median(latencies)
    figures["query_p95_ms"] = latencies[int(0.95 * len(latencies)) - 1]
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["chars_per_s"] = figures["chars"] / figures["tokenize_s"]
    for name, value in figures.items():
        print(f"{name:<20} {value:,.2f}" if isinstance(value, float) else f"{name:<20} {value:,}")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
