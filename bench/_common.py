"""Shared helpers for the benchmarks: a bilingual corpus, clustered vectors, timing, RSS, settings.

The corpus replicates `docs_corpus/` (the real files as copy 0, then variations with shuffled
paragraphs, other numbers and other names) so chunk texts are distinct and the embedding cache
cannot cheat. The latency server is `tests/fake_openai.FakeOpenAI` run in a child process, so its
own CPU work does not hold our interpreter's lock. Nothing here measures anything by itself.
"""

from __future__ import annotations

import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs_corpus"
BENCH_DATA = REPO / ".bench-data"

# Bilingual name swaps: each variation replaces these words with another of their group.
_SWAPS = [
    ["Chroma", "Qdrant", "Milvus", "Weaviate", "LanceDB", "pgvector"],
    ["OpenAI", "Cohere", "Voyage", "Jina", "Mistral", "Nomic"],
    ["Streamlit", "Gradio", "Panel", "Dash", "NiceGUI", "Reflex"],
    ["東京", "大阪", "名古屋", "札幌", "福岡", "仙台"],
    ["猫", "犬", "狐", "狸", "兎", "鳥"],
    ["ベクトル", "埋め込みベクトル", "特徴ベクトル", "数値ベクトル", "密ベクトル", "表現ベクトル"],
    ["検索", "探索", "照会", "検索処理", "近傍検索", "類似検索"],
]


def _source_texts() -> list[tuple[str, str]]:
    """(relative name, visible text) of every corpus file, read through our own loaders."""
    from rag.ingest.loaders import FoundFile, discover, load

    out = []
    for item in discover([DOCS]):
        if isinstance(item, FoundFile):
            docs = load(item, item.path.read_bytes())
            out.append((item.source, "\n\n".join(d.page_content for d in docs)))
    return out


def _vary(text: str, rng: random.Random, copy: int) -> str:
    """Same language, same shape, different chunks: shuffle paragraphs, renumber, rename, and
    tag each paragraph (a note number, as real documents have) so no chunk repeats verbatim."""
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    head, body = paras[:1], paras[1:]
    rng.shuffle(body)
    digits = list("0123456789")
    rng.shuffle(digits)
    table = str.maketrans("0123456789", "".join(digits))
    tagged = [f"{p} [{copy}.{i}]" for i, p in enumerate(head + body)]
    out = "\n\n".join(tagged).translate(table)
    for group in _SWAPS:
        pick = rng.choice(group)
        out = re.sub("|".join(map(re.escape, sorted(group, key=len, reverse=True))), pick, out)
    return out


def make_corpus(dest: Path, copies: int, seed: int = 7) -> Path:
    """`copies` x docs_corpus under `dest`: the originals (PDF, HTML, ...) plus text variations."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(DOCS, dest / "v00", ignore=shutil.ignore_patterns("*.jsonl"))
    sources = _source_texts()
    rng = random.Random(seed)
    for copy in range(1, copies):
        for name, text in sources:
            target = dest / f"v{copy:02d}" / Path(name).with_suffix(
                ".txt" if name.endswith(".txt") else ".md"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_vary(text, rng, copy), encoding="utf-8")
    return dest


def chunk_corpus(root: Path, chunk_size: int = 300, overlap: int = 50) -> list[Any]:
    """The chunks our pipeline makes of `root` (same loaders, same splitter, same metadata)."""
    from rag.ingest.chunking import split_documents
    from rag.ingest.loaders import FoundFile, discover, load

    chunks = []
    for item in discover([root]):
        if isinstance(item, FoundFile):
            for chunk in split_documents(load(item, item.path.read_bytes()), chunk_size, overlap):
                chunk.metadata = {k: v for k, v in chunk.metadata.items() if v not in (None, "")}
                chunks.append(chunk)
    return chunks


def clustered_vectors(n: int, dims: int, *, queries: int = 0, topics: int = 300,
                      subtopics: int = 8, seed: int = 0) -> tuple[Any, Any]:
    """`n` unit vectors and `queries` held-out ones, in topical clumps (topic -> sub-topic -> point).

    Uniform noise in 1,536 dims makes every pair near-orthogonal, which no text model produces;
    real corpora are clumps within clumps. Here a point's cosine to its sub-topic is about 0.8,
    two points of one sub-topic about 0.64, of one topic about 0.4, unrelated points about 0.
    The stored vectors depend only on (n, dims, seed), never on how many queries are drawn.
    """
    import numpy as np

    def unit(x: Any) -> Any:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def jitter(rng: Any, rows: int, scale: float) -> Any:
        # a standard normal vector has norm ~sqrt(dims): scale it to norm ~`scale`
        return rng.standard_normal((rows, dims), dtype=np.float32) * (scale / np.sqrt(dims))

    shape = np.random.default_rng(seed)
    centres = unit(shape.standard_normal((topics, dims), dtype=np.float32))
    subs = unit(np.repeat(centres, subtopics, axis=0) + jitter(shape, topics * subtopics, 0.8))

    def points(rng: Any, count: int) -> Any:
        labels = rng.integers(0, len(subs), count)
        out = np.empty((count, dims), dtype=np.float32)
        for start in range(0, count, 10_000):
            part = labels[start:start + 10_000]
            out[start:start + len(part)] = unit(subs[part] + jitter(rng, len(part), 0.75))
        return out

    return points(np.random.default_rng(seed + 1), n), points(np.random.default_rng(seed + 2), queries)


def bench_dir(*parts: str) -> Path:
    """A folder under `.bench-data/`, which ignores itself in git (built collections are large)."""
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    marker = BENCH_DATA / ".gitignore"
    if not marker.exists():
        marker.write_text("# benchmark collections: rebuilt on demand, never committed\n*\n")
    return BENCH_DATA.joinpath(*parts)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def use_settings(data_dir: Path, **env: str | None) -> Any:
    """Point `get_settings()` at `data_dir` with these env vars, forgetting cached clients."""
    from rag import store
    from rag.config import get_settings

    os.environ["RAG_DATA_DIR"] = str(data_dir)
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    store.reset_clients()
    return get_settings()


@contextmanager
def latency_server(latency_s: float) -> Iterator[tuple[str, str]]:
    """FakeOpenAI with a fixed delay per request, in a child process; yields (base_url, key)."""
    key = "sk-bench-0123456789abcdef"
    code = (
        "import sys,time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.fake_openai import FakeOpenAI\n"
        f"s = FakeOpenAI(api_key={key!r}, latency_s={latency_s!r}).start()\n"
        "print(s.base_url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the fake OpenAI server did not start")
        yield url, key
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
