"""Calibrate when the extractive answerer says "not in the documents", for the embedding model in force.

Questions the collection cannot answer: a seeded sample of the JSQuAD and XQuAD dev questions
(Wikipedia) asked against the main collection (docs_corpus, ingested first). Questions it can:
docs_corpus/qa.jsonl. For each, the evidence the answerer weighs (`Answerer.evidence`: the best
hit's cosine and its IDF-weighted coverage of the question's words), retrieved at the default k
and mode. Prints both distributions and, for a grid of bars, the share of out-of-corpus questions
declined against the share of answerable ones still answered; the chosen bars go into
`rag.answer.evidence.CALIBRATIONS` under the model's name.

    RAG_DATA_DIR=/tmp/answers-eval [RAG_EMBEDDING_PROVIDER=e5] .venv/bin/python bench/abstain.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.answer.answerer import Answerer  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.evaluate import load, sample  # noqa: E402

EVAL = Path("/work/shared/eval")


def features(answerer: Answerer, questions: list[str]) -> np.ndarray:
    rows = []
    for q in questions:
        ev = answerer.evidence(answerer.searcher.search(q))
        rows.append((ev.cosine, ev.coverage))
    return np.asarray(rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="questions sampled from each dev set")
    parser.add_argument("--eval-dir", type=Path, default=EVAL)
    parser.add_argument("--min-answered", type=float, default=0.95)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    answerer = Answerer(get_settings())
    model = answerer.searcher.info.model
    outside = [q.text for f in ("jsquad-dev.json", "xquad-en-dev.json")
               for q in sample(load(args.eval_dir / f).questions, args.n, 0)]
    inside = [q.text for q in load(REPO / "docs_corpus" / "qa.jsonl").questions]
    out, inn = features(answerer, outside), features(answerer, inside)
    rows = []
    for cos in np.unique(np.round(np.concatenate([out[:, 0], inn[:, 0]]), 3)):
        for cov in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01):
            declined = float(np.mean((out[:, 0] < cos) & (out[:, 1] < cov)))
            answered = float(np.mean((inn[:, 0] >= cos) | (inn[:, 1] >= cov)))
            rows.append({"cosine": float(cos), "coverage": cov, "declined_outside": round(declined, 4),
                         "answered_inside": round(answered, 4)})
    ok = [r for r in rows if r["answered_inside"] >= args.min_answered]
    best = max(ok, key=lambda r: (r["declined_outside"], r["answered_inside"]))
    quant = {name: {"cosine_p50_p90_p99": np.percentile(x[:, 0], [50, 90, 99]).round(3).tolist(),
                    "coverage_p50_p90_p99": np.percentile(x[:, 1], [50, 90, 99]).round(3).tolist(),
                    "cosine_p1_p5_p10": np.percentile(x[:, 0], [1, 5, 10]).round(3).tolist()}
             for name, x in (("outside", out), ("inside", inn))}
    report = {"model": model, "outside": len(outside), "inside": len(inside), "quantiles": quant,
              "best": best}
    if args.json:
        json.dump({**report, "rows": rows}, sys.stdout)
        return 0
    print(json.dumps(report, indent=2))  # noqa: T201
    for cov in (0.4, 0.5, 0.6, 0.8, 1.01):
        front = [r for r in ok if r["coverage"] == cov]
        if front:
            r = max(front, key=lambda r: r["declined_outside"])
            print(f"coverage {cov}: cosine {r['cosine']:.3f} declines {r['declined_outside']:.3f} "  # noqa: T201
                  f"answers {r['answered_inside']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
