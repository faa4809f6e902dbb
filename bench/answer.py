"""Warm answer latency in extractive mode on docs_corpus (offline, local model).

Ingests docs_corpus into a temporary data dir, warms up with one question, then times `answer()`
over 20 questions of the QA set that it has not seen (model warm, nothing cached for them), then
the same questions again (embeddings cached), and prints p50/p95. The baseline in the same process
is `Searcher.search` alone on 20 other new questions, so the ratio shows what the extractive step
(splitting and scoring every retrieved sentence) costs on top of retrieval.

    .venv/bin/python bench/answer.py [--n 20] [-k 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    for name in list(os.environ):
        if name.startswith(("RAG_", "OPENAI_", "CHROMA_")):
            del os.environ[name]
    tmp = tempfile.mkdtemp(prefix="rag-bench-answer-")
    os.environ["RAG_DATA_DIR"] = tmp
    os.environ["RAG_ANSWER_MODE"] = "extractive"

    from rag.answer.answerer import Answerer
    from rag.config import get_settings
    from rag.ingest.pipeline import Ingestor

    settings = get_settings()
    started = time.perf_counter()
    report = Ingestor(settings).ingest([REPO / "docs_corpus"])
    print(f"ingest: {report.added} chunks in {time.perf_counter() - started:.1f} s ({tmp})")
    questions = [json.loads(line)["question"]
                 for line in (REPO / "docs_corpus" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    base_qs, answer_qs = questions[: args.n], questions[args.n: 2 * args.n]
    answerer = Answerer(settings)
    answerer.answer("warm up: what is an embedding?", k=args.k)

    def timed(fn, qs: list[str]) -> list[float]:
        out = []
        for q in qs:
            t0 = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    # Model warm, questions never seen: the latency a user gets. Then the same questions again,
    # when the query and sentence embeddings come from the cache.
    search = timed(lambda q: answerer.searcher.search(q, k=args.k), base_qs)
    new = timed(lambda q: answerer.answer(q, k=args.k), answer_qs)
    repeat = timed(lambda q: answerer.answer(q, k=args.k), answer_qs)
    for label, values in (("search only, new question (baseline)", search),
                          ("answer, new question", new),
                          ("answer, repeated question (cached)", repeat)):
        print(f"{label:38s} n={len(values)}  p50 {statistics.median(values):7.1f} ms"
              f"  p95 {pct(values, 0.95):7.1f} ms")
    print(f"ratio answer / search p50 (new questions): "
          f"{statistics.median(new) / statistics.median(search):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
