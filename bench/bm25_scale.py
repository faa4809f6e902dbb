"""BM25 at scale: build, persist, reload, refresh and query an index of N synthetic chunks.

Chunks are ~400-character mixes of real sentences from `docs_corpus/` (Japanese and English,
seeded), ten per file as in `bench/scale.py`, so the vocabulary and term statistics look like the
bundled corpus at a larger size. Measures `rag.retrieve.bm25` directly (no Chroma): tokenizing
throughput, build, save and reload (memory-mapped segments), the refresh after a 1 % change
(0.5 % of the files deleted, as many chunks added, as `bench/scale.py` does), query latency and
memory. With `--compare`, the same figures for the design before segments (one matrix and
precomputed weights, rebuilt on every refresh; read from git history) side by side, on the same
term counts, and the largest score difference between the two.

    .venv/bin/python bench/bm25_scale.py --chunks 1000000 --compare
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PER_FILE = 10


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


def chunks(n: int, seed: int = 0, start: int = 0) -> list[str]:
    pool = sentences()
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        parts, size = [], 0
        while size < 400:
            s = rng.choice(pool)
            parts.append(s)
            size += len(s)
        out.append(f"#{i} " + " ".join(parts))  # the number keeps every chunk distinct
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def old_module() -> Any:
    """`rag/retrieve/bm25.py` as it was before segments, from git history."""
    moved = subprocess.run(["git", "rev-list", "-n1", "HEAD", "--", "rag/retrieve/bm25.py"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    source = subprocess.run(["git", "show", f"{moved}^:rag/retrieve/bm25.py"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "bm25_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bm25_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bm25_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def latencies(search: Any, queries: list[str]) -> tuple[float, float]:
    times = []
    for query in queries:
        t0 = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--compare", action="store_true", help="also measure the design before segments")
    args = parser.parse_args()

    from rag.retrieve import bm25
    from rag.retrieve.bm25 import BM25Index, Segment, SyncState, Vocabulary

    n = args.chunks
    texts = chunks(n)
    ids = [f"c{i}" for i in range(n)]
    paths = [f"/bench/doc{i // PER_FILE:07d}.md" for i in range(n)]
    figures: dict[str, Any] = {"chunks": n, "chars": sum(map(len, texts))}
    rng = random.Random(2)
    pool = sentences()
    queries = [rng.choice(pool)[:60] for _ in range(args.queries)]
    start_mb = rss_mb()

    t0 = time.perf_counter()
    vocab = Vocabulary()
    base = Segment.from_texts(ids, texts, vocab, paths)
    figures["tokenize_s"] = time.perf_counter() - t0
    figures["chars_per_s"] = figures["chars"] / figures["tokenize_s"]
    t0 = time.perf_counter()
    index = BM25Index([base], vocab, sync=SyncState(synced_at=1.0))
    figures["index_s"] = time.perf_counter() - t0
    figures["terms"] = index.n_terms
    figures["postings"] = int(base.by_term.nnz)
    del texts
    gc.collect()

    # the change another machine makes: 0.5 % of the files deleted, as many chunks added
    files = n // PER_FILE
    gone = [f"/bench/doc{d:07d}.md" for d in random.Random(1).sample(range(files), max(1, files // 200))]
    added = chunks(len(gone) * PER_FILE, seed=1, start=n)
    added_ids = [f"n{i}" for i in range(len(added))]
    added_paths = [f"/bench/new{i // PER_FILE:07d}.md" for i in range(len(added))]
    figures["change_deleted_added"] = f"{len(gone) * PER_FILE} / {len(added)}"

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        t0 = time.perf_counter()
        bm25.save(index, path, "bench")
        figures["save_s"] = time.perf_counter() - t0
        figures["files_mb"] = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 1e6
        t0 = time.perf_counter()
        loaded = bm25.load(path, "bench")
        figures["reload_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded.top(queries[0], 50)
        figures["first_query_after_reload_ms"] = (time.perf_counter() - t0) * 1000
        del loaded

        t0 = time.perf_counter()
        delta = Segment.from_texts(added_ids, added, index.vocab, added_paths)
        figures["refresh_tokenize_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        after = index.updated(index.rows_of_paths(gone), delta, "2", SyncState(synced_at=2.0))
        figures["refresh_update_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        bm25.save(after, path, "bench")
        figures["refresh_save_s"] = time.perf_counter() - t0
    figures["refresh_1pct_s"] = figures["refresh_tokenize_s"] + figures["refresh_update_s"]
    # the first pass starts with no term weights kept (as after every refresh), the second reuses them
    figures["query_first_pass_p50_ms"], figures["query_first_pass_p95_ms"] = \
        latencies(lambda q: index.top(q, 50), queries)
    figures["query_p50_ms"], figures["query_p95_ms"] = latencies(lambda q: index.top(q, 50), queries)
    figures["query_after_refresh_first_pass_p50_ms"], _ = latencies(lambda q: after.top(q, 50), queries)
    figures["query_after_refresh_p50_ms"], _ = latencies(lambda q: after.top(q, 50), queries)
    figures["rss_mb_index"] = rss_mb() - start_mb

    if args.compare:
        compare(figures, index, after, queries, (gone, added_ids, added))
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for name, value in figures.items():
        text = f"{value:.2e}" if name.startswith("max_rel") else f"{value:,.2f}" if isinstance(value, float) \
            else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{name:<40} {text}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) and not k.startswith("max_rel") else v
                      for k, v in figures.items()}))


def compare(figures: dict[str, Any], index: Any, after: Any, queries: list[str],
            change: tuple[list[str], list[str], list[str]]) -> None:
    """The design before segments on the same counts: weights, refresh, queries, scores."""
    from scipy.sparse import csr_matrix

    old = old_module()
    base = index.segments[0]
    gone, added_ids, added = change
    by_doc = base.by_doc
    tf = csr_matrix((by_doc.data.astype(np.int32), by_doc.indices, by_doc.indptr), shape=by_doc.shape)
    row_paths = [base.paths[c] for c in base.path_codes]
    counts = old.TermCounts(list(base.ids), list(index.vocab.terms[: index.n_terms]), tf, row_paths)
    before_mb = rss_mb()
    t0 = time.perf_counter()
    old_index = old.BM25Index(counts)
    figures["before_weights_s"] = time.perf_counter() - t0
    figures["before_rss_mb_weights"] = rss_mb() - before_mb
    t0 = time.perf_counter()
    dropped = set(gone)
    keep = [i for i, p in zip(counts.ids, counts.paths, strict=True) if p not in dropped]
    new = old.TermCounts.from_texts(added_ids, added, vocab=counts.vocab)
    tokenized = time.perf_counter()
    old_after = old.BM25Index(counts.merged(keep, new))
    figures["before_refresh_tokenize_s"] = tokenized - t0
    figures["before_refresh_1pct_s"] = time.perf_counter() - t0
    figures["before_query_p50_ms"], figures["before_query_p95_ms"] = latencies(lambda q: old_index.top(q, 50), queries)
    figures["before_query_after_refresh_p50_ms"], _ = latencies(lambda q: old_after.top(q, 50), queries)
    worst = 0.0
    for query in queries[:50]:
        for a, b in ((index, old_index), (after, old_after)):
            sa, sb = a.scores(query), b.scores(query)
            by_id = dict(zip(b.ids, sb.tolist(), strict=True))
            for row in np.flatnonzero(sa).tolist():
                worst = max(worst, float(abs(sa[row] - by_id[a.ids[row]]) / sa[row]))
    figures["max_rel_score_diff_vs_before"] = worst


if __name__ == "__main__":
    main()
