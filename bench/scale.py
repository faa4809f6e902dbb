"""Scale benchmark: a `chroma run` server holding N chunks (1M by default), our code beside raw Chroma.

For each size of vector (384 and 1,536 dims), N synthetic chunks (~400-character mixes of real
`docs_corpus/` sentences, Japanese and English) with clustered unit vectors as in `bench/query.py`,
ten chunks per file, written the way an ingest writes them (chunks, then the file records and
write version in the store's manifest). Then, against the server:

  query       p50/p95 of `Searcher.search` per mode (vector, bm25, hybrid), query embedding cached,
              beside raw `collection.query` (vector top 5)
  bm25        build from the store with no cache (a fresh data dir), refresh after a 1 % change
              (0.5 % of files deleted, as many added, by another "machine"), reload from disk
  memory      resident memory of the Chroma server, and of this process before and after BM25
  app         every interaction that touches the collection: sidebar count, source-filter list,
              documents list, `rag stats`, similarity histogram and projection sample (the
              debug panel's vector load), a PCA map, `rag delete` of one document; raw Chroma's
              way to get the same answer where there is one

Built servers are kept under `.bench-data/scale/` (git-ignored), so only the first run pays for
the build (Chroma adds ~800 vectors/s on 2 cores: a 1M build takes hours).

    .venv/bin/python bench/scale.py --quick            # 50,000 chunks
    .venv/bin/python bench/scale.py --chunks 1000000   # the full run
    .venv/bin/python bench/scale.py --chunks 1000000 --dims 384 --app-only   # interactions only, store kept
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_dir, clustered_vectors, median, pct, use_settings  # noqa: E402
from bench.bm25_scale import sentences  # noqa: E402

BATCH = 5000
"""Chunks per add; 1,536-dim batches are smaller (the server refuses bodies over its limit)."""
PER_FILE = 10
QUERY_WORDS = ["ベクトル", "検索", "埋め込み", "類似度", "Chroma", "cosine", "token", "チャンク",
               "HNSW", "モデル", "embedding", "query"]


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(path: Path) -> tuple[subprocess.Popen, int]:
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    log = open(path / "server.log", "ab")
    proc = subprocess.Popen([chroma, "run", "--path", str(path / "builder" / "chroma"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("chroma run did not start: see " + str(path / "server.log")) from None
            time.sleep(0.5)
    raise RuntimeError("chroma run did not answer in 5 minutes")


def texts(start: int, stop: int, pool: list[str]) -> list[str]:
    out = []
    for i in range(start, stop):
        rng = random.Random(i)
        parts, size = [], 0
        while size < 400:
            s = rng.choice(pool)
            parts.append(s)
            size += len(s)
        out.append(f"#{i} " + " ".join(parts))
    return out


def chunk_meta(i: int) -> dict[str, Any]:
    doc = i // PER_FILE
    return {"path": f"/bench/doc{doc:07d}.md", "source": f"doc{doc:07d}.md", "chunk": i % PER_FILE}


def write_chunks(settings: Any, info: Any, coll: Any, ids: list[int], vectors: Any, pool: list[str],
                 tag: str = "") -> tuple[float, float]:
    """Chunks then file records, as an ingest writes them; (chroma seconds, manifest seconds)."""
    from rag.state import FileRecord, Manifest

    manifest = Manifest(settings, info.collection_name)
    chroma_s = manifest_s = 0.0
    batch = BATCH if info.dims <= 512 else 1000
    for start in range(0, len(ids), batch):
        part = ids[start:start + batch]
        metas = [chunk_meta(i) for i in part]
        began = time.perf_counter()
        coll.add(ids=[f"c{i}{tag}" for i in part], embeddings=vectors[start:start + len(part)],
                 documents=texts(part[0], part[0] + len(part), pool) if not tag else
                 [f"{t} {tag}" for t in texts(part[0], part[0] + len(part), pool)],
                 metadatas=metas)
        chroma_s += time.perf_counter() - began
        began = time.perf_counter()
        files: dict[str, int] = {}
        for m in metas:
            files[m["path"]] = files.get(m["path"], 0) + 1
        manifest.put([FileRecord(p, p.rsplit("/", 1)[1], f"d{tag}", "bench", n) for p, n in files.items()])
        manifest_s += time.perf_counter() - began
    return chroma_s, manifest_s


class QueryVectors:
    """Held-out query vectors by text: the embedding cache's answer, without a model."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]


def timed_ms(fn: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return (time.perf_counter() - began) * 1000, out


def build(n: int, dims: int) -> None:
    """Write n chunks into `<root>/builder/chroma` through an embedded client (`--build`)."""
    from rag import store
    from rag.embed.providers import EmbeddingInfo

    root = bench_dir("scale", f"v2-{n}-{dims}")
    settings = use_settings(root / "builder", CHROMA_HOST=None, OPENAI_API_KEY="sk-bench-unused-0000",
                            OPENAI_BASE_URL=None, RAG_OPENAI_EMBEDDING_DIMS=str(dims))
    info = EmbeddingInfo("openai", "text-embedding-3-small", dims, "bench")
    pool = sentences()
    vectors, _ = clustered_vectors(n, dims, seed=dims)
    coll = store.collection(settings, info)
    began = time.perf_counter()
    chroma_s = manifest_s = 0.0
    for start in range(0, n, 50_000):
        stop = min(start + 50_000, n)
        c, m = write_chunks(settings, info, coll, list(range(start, stop)), vectors[start:stop], pool)
        chroma_s, manifest_s = chroma_s + c, manifest_s + m
        print(f"  {dims} dims: {stop}/{n} chunks, {stop / (time.perf_counter() - began):.0f}/s",
              file=sys.stderr, flush=True)
    (root / "complete.json").write_text(json.dumps({
        "build_s": round(time.perf_counter() - began, 1), "chroma_add_s": round(chroma_s, 1),
        "manifest_s": round(manifest_s, 1), "writer": "embedded client, then served by chroma run"}))


def run(n: int, dims: int, queries: int, keep: bool, app_only: bool = False,
        change_seed: int = 1) -> dict[str, Any]:
    from rag import store
    from rag.embed.providers import EmbeddingInfo
    from rag.lens import collection as lens
    from rag.lens import projection
    from rag.retrieve import bm25
    from rag.retrieve.searcher import Searcher
    from rag.state import Manifest

    root = bench_dir("scale", f"v2-{n}-{dims}")
    done = root / "complete.json"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        # the build writes straight into the directory the server will serve (~35 % faster than
        # over HTTP), in a child process so that its embedded client has let go before `chroma run`
        subprocess.run([sys.executable, __file__, "--build", str(n), "--dims", str(dims)], check=True)
    server, port = start_server(root)
    out: dict[str, Any] = {"chunks": n, "dims": dims, "files": n // PER_FILE}
    try:
        env = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port), "OPENAI_API_KEY": "sk-bench-unused-0000",
               "OPENAI_BASE_URL": None, "RAG_OPENAI_EMBEDDING_DIMS": str(dims)}
        settings = use_settings(root / "machine-a", **env)
        info = EmbeddingInfo("openai", "text-embedding-3-small", dims, "bench")
        pool = sentences()
        _, qvecs = clustered_vectors(0, dims, queries=queries, seed=dims)  # queries do not depend on n
        out["build"] = json.loads(done.read_text())
        out["memory_mb"] = {"chroma_server_loaded": None, "bench_process_start": round(rss_mb(), 1)}
        if app_only:  # the interactions alone, the store left as it was (the 1M store is slow to rebuild)
            settings = use_settings(root / f"machine-b-{time.time_ns()}", **env)
            searcher = Searcher(settings, info)
            out["app_ms"] = app_interactions(settings, info, searcher, lens, projection, store, Manifest, n,
                                             restore=True)
            return out

        # machine B: a fresh data dir, nothing cached
        settings = use_settings(root / f"machine-b-{time.time_ns()}", **env)
        words = random.Random(dims)
        qtexts = [f"{' '.join(words.sample(QUERY_WORDS, 3))} #{i}" for i in range(queries)]
        searcher = Searcher(settings, info)
        searcher.embeddings = QueryVectors({t: q.tolist() for t, q in zip(qtexts, qvecs, strict=True)})
        raw = searcher.collection
        raw.query(query_embeddings=[qvecs[0].tolist()], n_results=5)  # load the HNSW index
        out["memory_mb"]["chroma_server_loaded"] = round(rss_mb(server.pid), 1)

        before = rss_mb()
        build_ms, index = timed_ms(lambda: bm25.index_for(settings, searcher.collection))
        out["bm25"] = {"build_ms": round(build_ms), "terms": len(index.vocab)}
        out["memory_mb"]["bench_process_bm25_delta"] = round(rss_mb() - before, 1)
        bm25.clear_memory()
        load_ms, _ = timed_ms(lambda: bm25.index_for(settings, searcher.collection))
        out["bm25"]["reload_from_disk_ms"] = round(load_ms)

        out["query"] = {}
        raw_ms = [timed_ms(lambda q=q: raw.query(query_embeddings=[q.tolist()], n_results=5))[0]
                  for q in qvecs]
        out["query"]["raw_chroma_vector"] = {"p50_ms": round(median(raw_ms), 2), "p95_ms": round(pct(raw_ms, 95), 2)}
        for mode in ("vector", "bm25", "hybrid"):
            searcher.search(qtexts[0], k=5, mode=mode)
            times = [timed_ms(lambda t=t, m=mode: searcher.search(t, k=5, mode=m))[0] for t in qtexts]
            out["query"][mode] = {"p50_ms": round(median(times), 2), "p95_ms": round(pct(times, 95), 2)}

        out["app_ms"] = app_interactions(settings, info, searcher, lens, projection, store, Manifest, n)

        # another machine changes 1 %: deletes 0.5 % of the files, adds as many chunks
        from rag.ingest.pipeline import Ingestor

        writer_settings = use_settings(root / "machine-a", **env)
        writer = Ingestor(writer_settings, info)
        files = n // PER_FILE
        gone = [f"/bench/doc{d:07d}.md" for d in random.Random(change_seed).sample(range(files), max(1, files // 200))]
        del_ms, deleted = timed_ms(lambda: writer.delete_paths(gone))
        new_ids = fresh_ids(n, change_seed, deleted)
        extra, _ = clustered_vectors(deleted, dims, seed=dims + 99)
        add_ms, _ = timed_ms(lambda: write_chunks(writer_settings, info, writer.vectors._collection,
                                                  new_ids, extra, pool, tag=f"new{change_seed}"))
        settings = use_settings(searcher.settings.data_dir, **env)
        out["change_1pct"] = {"deleted_chunks": deleted, "added_chunks": len(new_ids),
                              "delete_ms": round(del_ms), "add_ms": round(add_ms)}
        refresh_ms, _ = timed_ms(lambda: searcher.search(qtexts[1], k=5, mode="hybrid"))
        out["change_1pct"]["next_hybrid_question_ms"] = round(refresh_ms)
        again = [timed_ms(lambda t=t: searcher.search(t, k=5, mode="hybrid"))[0] for t in qtexts[:10]]
        out["change_1pct"]["hybrid_after_p50_ms"] = round(median(again), 2)
        out["change_1pct_watched"] = watched_change(root, env, info, searcher, lens, n, change_seed, qtexts, pool,
                                                    set(gone))
        out["memory_mb"]["bench_process_end"] = round(rss_mb(), 1)
        out["memory_mb"]["chroma_server_end"] = round(rss_mb(server.pid), 1)
        if not keep:  # the change is permanent: rebuild next time
            done.unlink()
    finally:
        server.terminate()
        server.wait(timeout=60)
    return out


def fresh_ids(n: int, change_seed: int, count: int, second: bool = False) -> list[int]:
    """Chunk numbers for a change's new chunks: new files (ten chunks each), distinct per seed, so
    a kept store changed again by another run never gets a second set of chunks under one record."""
    start = n + 100_000 * change_seed + (50_000 if second else 0)
    return list(range(start, start + count))


def watched_change(root: Path, env: dict[str, Any], info: Any, searcher: Any, lens: Any, n: int,
                   change_seed: int, qtexts: list[str], pool: list[str], gone: set[str]) -> dict[str, Any]:
    """Another 1 % change, this time with the app's store watcher between the write and the next
    question (`rag.retrieve.watch`: the app polls the write version every 2 s and refreshes then)."""
    from rag.ingest.pipeline import Ingestor
    from rag.retrieve.watch import Watcher

    settings = searcher.settings
    watcher = Watcher(searcher)
    watcher.check()  # in step with the store, as a running app is
    lens.vectors_for(settings, info, searcher.collection, watched=True)  # the panel opened once
    writer_settings = use_settings(root / "machine-a", **env)
    writer = Ingestor(writer_settings, info)
    files = n // PER_FILE
    picks = random.Random(change_seed + 1000).sample(range(files), 2 * max(1, files // 200))
    gone2 = [p for p in (f"/bench/doc{d:07d}.md" for d in picks) if p not in gone][:max(1, files // 200)]
    deleted = writer.delete_paths(gone2)
    extra, _ = clustered_vectors(deleted, searcher.info.dims, seed=searcher.info.dims + 98)
    write_chunks(writer_settings, info, writer.vectors._collection, fresh_ids(n, change_seed, deleted, True),
                 extra, pool, tag=f"w{change_seed}")
    use_settings(settings.data_dir, **env)
    out: dict[str, Any] = {"deleted_chunks": deleted, "added_chunks": deleted}
    out["watcher_refresh_ms"], _ = timed_ms(watcher.check)
    out["next_hybrid_question_ms"], _ = timed_ms(lambda: searcher.search(qtexts[2], k=5, mode="hybrid"))
    out["debug_panel_sample_click_ms"], _ = timed_ms(
        lambda: lens.vectors_for(settings, info, searcher.collection, watched=True))
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}


def app_interactions(settings: Any, info: Any, searcher: Any, lens: Any, projection: Any, store: Any,
                     manifest_cls: Any, n: int, restore: bool = False) -> dict[str, Any]:
    """Each interaction as the app or CLI makes it, first time (nothing cached in this process).

    The deleted document is one from the middle of the build; with `restore` its chunks and
    record are written back afterwards, so the store stays as built.
    """
    from rag.documents import list_documents
    from rag.ingest.pipeline import Ingestor

    raw = searcher.collection
    manifest = manifest_cls(settings, info.collection_name)
    # a server that has answered a question: its index loaded, as in the app after one question
    raw.query(query_embeddings=raw.get(limit=1, include=["embeddings"])["embeddings"][:1], n_results=5)
    out: dict[str, Any] = {}
    out["sidebar_count"], _ = timed_ms(searcher.count)
    out["raw_count"], _ = timed_ms(raw.count)
    out["source_filter_list"], _ = timed_ms(manifest.sources)
    out["documents_list"], _ = timed_ms(lambda: list_documents(settings, info))
    out["rag_stats"], _ = timed_ms(lambda: store.list_collections(settings))
    out["histogram_and_projection_sample_load"], loaded = timed_ms(lambda: lens.vectors_for(settings, info, raw))
    out["sample_size"] = len(loaded)
    out["similarity_histogram"], _ = timed_ms(lambda: loaded.similarities(loaded.matrix[0]))
    out["pca_map"], _ = timed_ms(lambda: projection.build_map(loaded, method="pca", dims=2, query=None))
    victim = chunk_meta((n // 2) // PER_FILE * PER_FILE)
    while manifest.get(victim["path"]) is None:  # a kept store may have lost it to an earlier run
        victim = chunk_meta(int(victim["path"][-10:-3]) * PER_FILE + PER_FILE)
    kept = raw.get(where={"path": victim["path"]}, include=["embeddings", "documents", "metadatas"])
    record = manifest.get(victim["path"])
    out["delete_one_document"], _ = timed_ms(lambda: Ingestor(settings, info).delete_source(victim["source"]))
    if restore and record is not None and kept["ids"]:
        raw.add(ids=kept["ids"], embeddings=kept["embeddings"], documents=kept["documents"],
                metadatas=kept["metadatas"])
        manifest.put([record])
    # without the manifest, distinct sources mean reading every chunk's metadata
    if n <= 200_000 and not restore:
        def scan() -> int:
            seen, offset = set(), 0
            while True:
                got = raw.get(include=["metadatas"], limit=BATCH, offset=offset)
                seen.update(m["source"] for m in got["metadatas"])
                if len(got["ids"]) < BATCH:
                    return len(seen)
                offset += BATCH
        out["raw_sources_by_scanning_metadata"], _ = timed_ms(scan)
    return {k: round(v, 1) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 chunks")
    parser.add_argument("--dims", default="384,1536")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the changed collection (no rebuild)")
    parser.add_argument("--change-seed", type=int, default=1,
                        help="which files the 1 %% change deletes (with --keep, vary it between runs)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--app-only", action="store_true",
                        help="only the app interactions, store left unchanged (a built store needed)")
    parser.add_argument("--build", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if args.build:
        build(args.build, int(args.dims))
        return
    n = 50_000 if args.quick else args.chunks
    results = []
    for d in args.dims.split(","):
        results.append(run(n, int(d), args.queries, args.keep, args.app_only, args.change_seed))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
