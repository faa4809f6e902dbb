"""Ingest benchmark: our pipeline against the naive LangChain path and the embedder alone.

For each provider (`use`, `e5`: the bundled offline models, `local`: whichever is the offline
default; `openai`: the real OpenAI client against a fake server on 127.0.0.1 that waits a fixed
300 ms per request), in the same process and interleaved:

  pipeline   `rag.ingest.pipeline.Ingestor` into a fresh data dir (fresh embedding cache: no cheating)
  naive      `Chroma.from_documents(chunks, embedding=<the provider's plain Embeddings>)`, same chunks
  embedder   the provider alone on the same chunk texts: the floor for a first ingest
  write      the same vectors, precomputed, added to a fresh collection: the store's floor
  reingest   the pipeline again on the unchanged corpus

Prints chunks/s (median of the repeats), the ratios against the targets and peak RSS; `--json`
prints one JSON document last. It measures; it does not tune (see docs/performance.md).

    .venv/bin/python bench/ingest.py --quick --json
    .venv/bin/python bench/ingest.py --provider e5 --copies 1 --repeats 2   # e5 is ~30x slower
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    chunk_corpus,
    latency_server,
    make_corpus,
    median,
    peak_rss_mb,
    use_settings,
)

TARGETS = {"local_vs_floor": 0.85, "local_vs_naive": 1.0, "openai_vs_naive": 3.0, "reingest": 50.0}
OFFLINE = ("local", "use", "e5")


def _pipeline(corpus: Path, data_dir: Path, env: dict[str, str | None], n: int) -> tuple[float, float]:
    """First ingest and unchanged re-ingest through our pipeline; seconds for each."""
    from rag.ingest.pipeline import Ingestor

    settings = use_settings(data_dir, **env)
    started = time.perf_counter()
    report = Ingestor(settings).ingest([corpus])
    first = time.perf_counter() - started
    if report.failed or report.added != n:
        raise SystemExit(f"pipeline added {report.added} of {n} chunks; failed: {report.failed}")
    started = time.perf_counter()
    again = Ingestor(settings).ingest([corpus])
    second = time.perf_counter() - started
    if again.added or again.skipped != n:
        raise SystemExit(f"re-ingest was not a no-op: {again.as_dict()}")
    return first, second


def _naive(corpus: Path, n: int, embeddings: Any, where: Path) -> float:
    """What the LangChain tutorials do: load and split, then one `from_documents` call with
    default batching into a default collection. Our loaders and splitter, so the chunks match."""
    started = time.perf_counter()
    db = _naive_docs(chunk_corpus(corpus), embeddings, where)
    seconds = time.perf_counter() - started
    if db._collection.count() != n:
        raise SystemExit("naive path stored the wrong number of chunks")
    return seconds


def _naive_docs(chunks: list[Any], embeddings: Any, where: Path) -> Any:
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    return Chroma.from_documents(
        chunks, embedding=embeddings, persist_directory=str(where), collection_name="naive",
        client_settings=ChromaSettings(anonymized_telemetry=False),
    )


def _write_only(chunks: list[Any], vectors: list[list[float]], data_dir: Path,
                env: dict[str, str | None]) -> float:
    """The store's floor: our collection settings, vectors already computed, one add per 256."""
    from rag import store
    from rag.embed.providers import resolve

    settings = use_settings(data_dir, **env)
    coll = store.collection(settings, resolve(settings))
    started = time.perf_counter()
    for i in range(0, len(chunks), 256):
        part = chunks[i:i + 256]
        coll.add(ids=[f"c{i + j}" for j in range(len(part))], embeddings=vectors[i:i + 256],
                 documents=[c.page_content for c in part], metadatas=[c.metadata for c in part])
    return time.perf_counter() - started


def run_provider(name: str, corpus: Path, chunks: list[Any], work: Path, repeats: int,
                 env: dict[str, str | None]) -> dict[str, Any]:
    from rag.embed.providers import OpenAIProvider, raw_embeddings, resolve

    n = len(chunks)
    texts = [c.page_content for c in chunks]
    settings = use_settings(work / "probe", **env)
    info = resolve(settings)
    print(f"{name}: {info.model} ({info.dims} dims)", file=sys.stderr, flush=True)
    if name in OFFLINE:
        raw: Any = raw_embeddings(settings, info)
        naive_emb: Any = raw
    else:
        from langchain_openai import OpenAIEmbeddings

        raw = OpenAIProvider(settings, info)
        # the tutorial's client: defaults only (1,000 inputs per request, one request at a time)
        naive_emb = OpenAIEmbeddings(model=info.model, api_key=settings.openai_api_key,
                                     base_url=settings.openai_base_url)
    times: dict[str, list[float]] = {k: [] for k in
                                     ("pipeline", "reingest", "naive", "embedder", "write", "chunk")}
    vectors: list[list[float]] = []
    # warm up once, untimed: imports, Chroma's first open, the HTTP connection pools
    sample = corpus / "v00" / "en"
    from rag.ingest.pipeline import Ingestor

    Ingestor(use_settings(work / f"warm-{name}", **env)).ingest([sample])
    _naive_docs(chunk_corpus(sample), naive_emb, work / f"warm-naive-{name}")
    raw.embed_documents(texts[:4])
    for r in range(repeats):
        steps = ["embedder", "pipeline", "naive", "write", "chunk"]
        steps = steps[r % len(steps):] + steps[:r % len(steps)]  # rotate: no variant always first
        for step in steps:
            where = work / f"{name}-{step}-{r}"
            if step == "embedder":
                started = time.perf_counter()
                vectors = raw.embed_documents(texts)
                times["embedder"].append(time.perf_counter() - started)
            elif step == "pipeline":
                first, second = _pipeline(corpus, where, env, n)
                times["pipeline"].append(first)
                times["reingest"].append(second)
            elif step == "naive":
                times["naive"].append(_naive(corpus, n, naive_emb, where))
            elif step == "chunk":
                started = time.perf_counter()
                chunk_corpus(corpus)
                times["chunk"].append(time.perf_counter() - started)
            else:
                if not vectors:
                    vectors = raw.embed_documents(texts)
                times["write"].append(_write_only(chunks, vectors, where, env))
            shutil.rmtree(where, ignore_errors=True)
            from rag import store

            store.reset_clients()
        print(f"  {name} repeat {r + 1}/{repeats}: " + ", ".join(
            f"{k} {v[-1]:.2f}s" for k, v in times.items() if v), file=sys.stderr, flush=True)
    rate = {k: n / median(v) for k, v in times.items()}
    return {
        "chunks_per_s": round(rate["pipeline"], 1),
        "naive_chunks_per_s": round(rate["naive"], 1),
        "embedder_only_chunks_per_s": round(rate["embedder"], 1),
        "write_only_chunks_per_s": round(rate["write"], 1),
        "chunk_only_chunks_per_s": round(rate["chunk"], 1),
        # the store holds the GIL while it writes and chunking needs it too: no pipeline beats
        # write + chunk, so this is the most any pipeline could gain over the naive path here
        "ceiling_vs_naive": round(median(times["naive"]) / (median(times["write"]) + median(times["chunk"])), 2),
        "reingest_s": round(median(times["reingest"]), 4),
        "reingest_speedup": round(median(times["pipeline"]) / median(times["reingest"]), 1),
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }


def openai_sweep(texts: list[str], url: str, key: str, work: Path, repeats: int) -> list[dict[str, Any]]:
    """The OpenAI embedder alone at each batch size x concurrency (the table in the docs)."""
    from rag.embed.providers import OpenAIProvider, resolve

    rows = []
    grid = [(b, c) for b in (64, 128, 256, 512, 1000) for c in (1, 2, 4, 8)]
    times: dict[tuple[int, int], list[float]] = {g: [] for g in grid}
    for r in range(repeats):
        for batch, conc in grid if r % 2 == 0 else list(reversed(grid)):
            settings = use_settings(work / "sweep", RAG_EMBEDDING_PROVIDER="openai", OPENAI_API_KEY=key,
                                    OPENAI_BASE_URL=url, RAG_OPENAI_BATCH_SIZE=str(batch),
                                    RAG_OPENAI_CONCURRENCY=str(conc))
            provider = OpenAIProvider(settings, resolve(settings))
            provider.embed_documents(texts[:2])  # connect and build the client outside the timing
            started = time.perf_counter()
            provider.embed_documents(texts)
            times[(batch, conc)].append(time.perf_counter() - started)
    for (batch, conc), values in times.items():
        rows.append({"batch": batch, "concurrency": conc,
                     "chunks_per_s": round(len(texts) / median(values), 1)})
    print("\nopenai embedder alone, chunks/s (rows: inputs per request; columns: requests in flight)")
    print("  batch " + "".join(f"{c:>8d}" for c in (1, 2, 4, 8)))
    for batch in (64, 128, 256, 512, 1000):
        print(f"  {batch:5d} " + "".join(f"{x['chunks_per_s']:8.0f}" for x in rows if x["batch"] == batch))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 copies of the corpus, 2 repeats")
    parser.add_argument("--json", action="store_true", help="print one JSON document last")
    parser.add_argument("--copies", type=int, help="copies of docs_corpus (default 8; quick 2)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3; quick 2)")
    parser.add_argument("--providers", "--provider", dest="providers", default="local,openai",
                        help="comma-separated: use, e5 (the offline models by name), local (the "
                        "offline default), openai (against a fake server with --latency)")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per OpenAI request")
    parser.add_argument("--openai-sweep", action="store_true",
                        help="also time the OpenAI embedder at each batch size x concurrency")
    args = parser.parse_args(argv)
    copies = args.copies or (2 if args.quick else 8)
    repeats = args.repeats or (2 if args.quick else 3)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    work = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    try:
        corpus = make_corpus(work / "corpus", copies)
        chunks = chunk_corpus(corpus)  # also warms the loaders (pypdf, bs4, tiktoken)
        n = len(chunks)
        unique = len({c.page_content for c in chunks})
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        print(f"corpus: {files} files, {n} chunks ({unique} distinct texts), "
              f"{sum(len(c.page_content) for c in chunks) / n:.0f} chars per chunk", file=sys.stderr)
        results: dict[str, Any] = {"chunks": n, "distinct_chunks": unique, "files": files,
                                   "repeats": repeats}
        providers = args.providers.split(",")
        unknown = set(providers) - {*OFFLINE, "openai"}
        if unknown:
            raise SystemExit(f"unknown provider(s) {sorted(unknown)}: use, e5, local, openai")
        for name in (p for p in providers if p in OFFLINE):
            # no precomputed docs_corpus vectors: the pipeline must embed what the embedder does
            env = {"RAG_EMBEDDING_PROVIDER": name, "OPENAI_API_KEY": None, "OPENAI_BASE_URL": None,
                   "RAG_E5_BUNDLED_VECTORS": "false"}
            results[name] = run_provider(name, corpus, chunks, work, repeats, env)
        if "openai" in providers:
            with latency_server(args.latency) as (url, key):
                env = {"RAG_EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": key,
                       "OPENAI_BASE_URL": url}
                results["openai"] = run_provider("openai", corpus, chunks, work, repeats, env)
                results["openai"]["latency_s"] = args.latency
                if args.openai_sweep:
                    texts = [c.page_content for c in chunks]
                    results["openai_sweep"] = openai_sweep(texts, url, key, work, repeats)
        speedups = [results[p]["reingest_speedup"] for p in (*OFFLINE, "openai") if p in results]
        results["reingest_speedup"] = min(speedups) if speedups else None
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        report(results)
        if args.json:
            print(json.dumps(results))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(res: dict[str, Any]) -> None:
    print(f"\n{res['chunks']} chunks, median of {res['repeats']} interleaved runs (chunks/s)")
    for name in (*OFFLINE, "openai"):
        if name not in res:
            continue
        r = res[name]
        print(f"  {name:7s} pipeline {r['chunks_per_s']:8.1f}   naive {r['naive_chunks_per_s']:8.1f}"
              f"   embedder alone {r['embedder_only_chunks_per_s']:8.1f}"
              f"   store write alone {r['write_only_chunks_per_s']:8.1f}"
              f"   load+chunk alone {r['chunk_only_chunks_per_s']:8.1f}"
              f"   re-ingest {r['reingest_s'] * 1000:.0f} ms")
    checks = []
    for name in (p for p in OFFLINE if p in res):
        r = res[name]
        checks.append((f"{name} pipeline / embedder alone", r["chunks_per_s"] / r["embedder_only_chunks_per_s"],
                       TARGETS["local_vs_floor"]))
        checks.append((f"{name} pipeline / naive", r["chunks_per_s"] / r["naive_chunks_per_s"],
                       TARGETS["local_vs_naive"]))
    if "openai" in res:
        r = res["openai"]
        checks.append(("openai pipeline / naive", r["chunks_per_s"] / r["naive_chunks_per_s"],
                       TARGETS["openai_vs_naive"]))
        print(f"  openai: naive / (store write + load+chunk) = {r['ceiling_vs_naive']:.2f}x, the most "
              "any pipeline could gain here")
    for name in (*OFFLINE, "openai"):
        if name in res:
            checks.append((f"{name} first ingest / re-ingest", res[name]["reingest_speedup"],
                           TARGETS["reingest"]))
    for label, value, target in checks:
        verdict = "ok" if value >= target else "BELOW TARGET"
        print(f"  {label:34s} {value:7.2f}x  (target >= {target:g}x)  {verdict}")
    print(f"  peak RSS {res['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
