"""Query benchmark: our store query against Chroma alone, exact numpy search, and HNSW recall.

For each collection (10k and 100k vectors at 1,536 and 512 dims, clustered like real embeddings;
`--quick` does the 10k ones), with held-out queries from the same distribution:

  ours       `Searcher.vector_hits(query_vector, 5)`: what every search pays after embedding
  chroma     `collection.query(query_embeddings=[v], n_results=5)` with Chroma's default include
  brute      exact cosine top-5 in numpy over the same vectors held in memory
  recall@10  Chroma's top 10 against the exact top 10
  search     `Searcher.search(text)` end to end with the local model (512 dims only; every query
             text is new, so nothing comes from the embedding cache)

Built collections are kept under `.bench-data/query/` (git-ignored), so only the first run pays
for building 100k vectors. `--sweep` adds the ef_search table used in docs/performance.md.

    .venv/bin/python bench/query.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    DOCS,
    bench_dir,
    clustered_vectors,
    median,
    pct,
    peak_rss_mb,
    use_settings,
)

BUILD_BATCH = 5000  # under Chroma's 5,461 max batch
_FILLER = ("埋め込みベクトルは文の意味を数値で表します。Embeddings map text to vectors so that "
           "similar meanings land close together. ") * 3


def _info(dims: int) -> Any:
    from rag.embed.providers import LOCAL_DIMS, LOCAL_MODEL, EmbeddingInfo

    if dims == LOCAL_DIMS:
        return EmbeddingInfo("local", LOCAL_MODEL, dims, "bench")
    return EmbeddingInfo("openai", "text-embedding-3-small", dims, "bench")


def open_collection(n: int, dims: int, queries: int, params: dict[str, int],
                    rebuild: bool = False) -> tuple[Any, Any, Any, Any]:
    """(settings, info, vectors, query vectors); builds and caches the collection once."""
    tag = f"v2-{n // 1000}k-{dims}-efc{params['ef_construction']}-m{params['m']}"
    data_dir = bench_dir("query", tag)
    done = data_dir / "complete.json"
    vectors, qvecs = clustered_vectors(n, dims, queries=queries, seed=dims + n)
    if rebuild or not done.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
    settings = use_settings(
        data_dir, OPENAI_API_KEY="sk-bench-unused-0000", OPENAI_BASE_URL=None,
        RAG_HNSW_EF_CONSTRUCTION=str(params["ef_construction"]), RAG_HNSW_M=str(params["m"]),
        RAG_HNSW_EF_SEARCH=str(params["ef_search"]),
    )
    info = _info(dims)
    if not done.exists():
        from rag import store

        coll = store.collection(settings, info)
        started = time.perf_counter()
        for start in range(0, n, BUILD_BATCH):
            stop = min(start + BUILD_BATCH, n)
            coll.add(
                ids=[f"v{i}" for i in range(start, stop)],
                embeddings=vectors[start:stop],
                documents=[f"{i}: {_FILLER}" for i in range(start, stop)],
                metadatas=[{"source": f"doc{i % 500:03d}.md", "chunk": i // 500, "tokens": 120}
                           for i in range(start, stop)],
            )
            rate = stop / (time.perf_counter() - started)
            print(f"  building {tag}: {stop}/{n} ({rate:.0f} vectors/s)", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - started
        done.write_text(json.dumps({"n": n, "dims": dims, **params, "build_s": round(seconds, 1),
                                    "vectors_per_s": round(n / seconds)}))
    return settings, info, vectors, qvecs


def searcher_with_ef(settings: Any, info: Any, ef: int) -> Any:
    """A Searcher whose collection really searches with `ef`.

    Chroma 1.5 persists `modify(ef_search=...)` but an index already loaded in this process keeps
    its old value (measured: recall unchanged until reopened), so drop Chroma's cached system
    and open the collection again.
    """
    from chromadb.api.client import SharedSystemClient

    from rag import store
    from rag.retrieve.searcher import Searcher

    coll = store.collection(settings, info)
    if (coll.configuration.get("hnsw") or {}).get("ef_search") != ef:
        coll.modify(configuration={"hnsw": {"ef_search": ef}})
        SharedSystemClient.clear_system_cache()
        store.reset_clients()
    return Searcher(settings, info)


def exact_top(vectors: Any, q: Any, k: int) -> Any:
    import numpy as np

    scores = vectors @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def measure(n: int, dims: int, queries: int, params: dict[str, int], rounds: int,
            rebuild: bool, sweep: list[int]) -> dict[str, Any]:
    settings, info, vectors, qvecs = open_collection(n, dims, queries, params, rebuild)
    searcher = searcher_with_ef(settings, info, params["ef_search"])
    coll = searcher.collection
    assert coll.configuration["hnsw"]["ef_search"] == params["ef_search"]
    qlists = [q.tolist() for q in qvecs]
    for q in qlists[:20]:  # load the index into memory, warm caches
        coll.query(query_embeddings=[q], n_results=10)
        searcher.vector_hits(q, 5)
    ours: list[float] = []
    chroma: list[float] = []
    chroma_emb: list[float] = []
    brute: list[float] = []
    for r in range(rounds):  # interleaved per query, order alternating per round
        for i, q in enumerate(qlists):
            steps = ("ours", "chroma", "chroma_emb", "brute")
            for step in steps if (i + r) % 2 == 0 else reversed(steps):
                started = time.perf_counter()
                if step == "ours":
                    hits = searcher.vector_hits(q, 5)
                    ours.append(time.perf_counter() - started)
                    assert len(hits) == 5
                elif step == "chroma":
                    coll.query(query_embeddings=[q], n_results=5)
                    chroma.append(time.perf_counter() - started)
                elif step == "chroma_emb":
                    coll.query(query_embeddings=[q], n_results=5,
                               include=["documents", "metadatas", "distances", "embeddings"])
                    chroma_emb.append(time.perf_counter() - started)
                else:
                    exact_top(vectors, qvecs[i], 5)
                    brute.append(time.perf_counter() - started)
    recall = _recall(coll, vectors, qvecs, qlists)
    ms = 1000.0
    out: dict[str, Any] = {
        "n": n, "dims": dims,
        "p50_ms": round(median(ours) * ms, 3), "p95_ms": round(pct(ours, 95) * ms, 3),
        "chroma_p50_ms": round(median(chroma) * ms, 3), "chroma_p95_ms": round(pct(chroma, 95) * ms, 3),
        "chroma_with_embeddings_p50_ms": round(median(chroma_emb) * ms, 3),
        "brute_p50_ms": round(median(brute) * ms, 3),
        "recall_at_10": round(recall, 4),
        "search_p50_ms": None, "search_p95_ms": None,
        "hnsw": params, "queries": len(qlists) * rounds,
    }
    build = json.loads((settings.data_dir / "complete.json").read_text())
    out["build_vectors_per_s"] = build["vectors_per_s"]
    if dims == 512:
        out.update(_end_to_end(searcher, len(qlists)))
    if sweep:
        out["ef_search_sweep"] = _sweep(settings, info, vectors, qvecs, qlists, sweep)
        searcher_with_ef(settings, info, params["ef_search"])
    from rag import store

    store.reset_clients()
    return out


def _recall(coll: Any, vectors: Any, qvecs: Any, qlists: list[list[float]]) -> float:
    found = 0
    for q, ql in zip(qvecs, qlists, strict=True):
        got = coll.query(query_embeddings=[ql], n_results=10, include=[])["ids"][0]
        truth = {f"v{i}" for i in exact_top(vectors, q, 10)}
        found += len(truth.intersection(got))
    return found / (10 * len(qlists))


def _sweep(settings: Any, info: Any, vectors: Any, qvecs: Any, qlists: list[list[float]],
           values: list[int]) -> list[dict[str, Any]]:
    rows = []
    for ef in values:
        searcher = searcher_with_ef(settings, info, ef)
        coll = searcher.collection
        for q in qlists[:10]:
            searcher.vector_hits(q, 5)
        times = []
        for q in qlists:
            started = time.perf_counter()
            searcher.vector_hits(q, 5)
            times.append(time.perf_counter() - started)
        rows.append({"ef_search": ef, "p50_ms": round(median(times) * 1000, 3),
                     "p95_ms": round(pct(times, 95) * 1000, 3),
                     "recall_at_10": round(_recall(coll, vectors, qvecs, qlists), 4)})
        print(f"    ef_search {ef:4d}: p50 {rows[-1]['p50_ms']:.2f} ms, "
              f"recall@10 {rows[-1]['recall_at_10']:.4f}", file=sys.stderr, flush=True)
    return rows


def _questions(count: int) -> list[str]:
    """Real questions from docs_corpus/qa.jsonl, each made new so the cache never answers."""
    lines = [json.loads(x)["question"] for x in (DOCS / "qa.jsonl").read_text("utf-8").splitlines()
             if x.strip()]
    return [f"{lines[i % len(lines)]} ({i})" for i in range(count)]


def _end_to_end(searcher: Any, count: int) -> dict[str, Any]:
    from rag.embed.providers import load_local_model

    load_local_model()
    stamp = time.time_ns()
    texts = [f"{q} #{stamp}" for q in _questions(count)]
    for t in texts[:5]:
        searcher.search(t + " warm", k=5, mode="vector")
    total, embed = [], []
    for t in texts:
        started = time.perf_counter()
        result = searcher.search(t, k=5, mode="vector")
        total.append(time.perf_counter() - started)
        embed.append(result.timings_ms["embed_ms"] / 1000)
    return {"search_p50_ms": round(median(total) * 1000, 2),
            "search_p95_ms": round(pct(total, 95) * 1000, 2),
            "embed_p50_ms": round(median(embed) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k vectors only")
    parser.add_argument("--json", action="store_true", help="print one JSON document last")
    parser.add_argument("--sizes", help="comma-separated collection sizes (default 10000,100000)")
    parser.add_argument("--dims", default="1536,512")
    parser.add_argument("--queries", type=int, help="held-out queries (default 300; quick 200)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries")
    parser.add_argument("--ef-search", type=int, help="default: RAG_HNSW_EF_SEARCH's default")
    parser.add_argument("--ef-construction", type=int)
    parser.add_argument("--m", type=int)
    parser.add_argument("--sweep", default="", help="ef_search values to sweep, e.g. 10,20,40,100")
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached collections")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    from rag.config import Settings

    defaults = Settings.model_fields
    params = {
        "ef_search": args.ef_search or defaults["hnsw_ef_search"].default,
        "ef_construction": args.ef_construction or defaults["hnsw_ef_construction"].default,
        "m": args.m or defaults["hnsw_m"].default,
    }
    sizes = [int(x) for x in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",")]
    dims_list = [int(x) for x in args.dims.split(",")]
    queries = args.queries or (200 if args.quick else 300)
    sweep = [int(x) for x in args.sweep.split(",") if x]
    results = []
    for n in sizes:
        for dims in dims_list:
            row = measure(n, dims, queries, params, args.rounds, args.rebuild, sweep)
            results.append(row)
            print(_line(row), file=sys.stderr, flush=True)
    print(f"\nstore query, top 5, HNSW {params}; median of {results[0]['queries']} queries (ms)")
    print(f"  {'n':>7s} {'dims':>5s} {'ours p50':>9s} {'p95':>7s} {'chroma':>7s} {'+emb':>7s} "
          f"{'exact':>7s} {'recall@10':>9s} {'search':>7s}")
    for r in results:
        print(_line(r))
    big = [r for r in results if r["n"] >= 100_000 and r["dims"] == 1536]
    for r in big or results[:1]:
        over = r["p50_ms"] - r["chroma_p50_ms"]
        print(f"  targets at {r['n']} x {r['dims']}: p50 {r['p50_ms']:.2f} ms (<= 8: "
              f"{'ok' if r['p50_ms'] <= 8 else 'MISSED'}), recall@10 {r['recall_at_10']:.3f} "
              f"(>= 0.98: {'ok' if r['recall_at_10'] >= 0.98 else 'MISSED'}), ours - chroma "
              f"{over:+.2f} ms (<= 1: {'ok' if over <= 1 else 'MISSED'})")
    print(f"  peak RSS {peak_rss_mb():.0f} MB")
    if args.json:
        print(json.dumps(results))
    return 0


def _line(r: dict[str, Any]) -> str:
    search = f"{r['search_p50_ms']:7.2f}" if r["search_p50_ms"] is not None else "      -"
    return (f"  {r['n']:7d} {r['dims']:5d} {r['p50_ms']:9.2f} {r['p95_ms']:7.2f} "
            f"{r['chroma_p50_ms']:7.2f} {r['chroma_with_embeddings_p50_ms']:7.2f} "
            f"{r['brute_p50_ms']:7.2f} {r['recall_at_10']:9.4f} {search}")


if __name__ == "__main__":
    raise SystemExit(main())
