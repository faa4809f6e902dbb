"""How the extractive chooser's evidence weights do end to end, on a QA file (tuning, not a test).

Retrieves each question at the default k and mode exactly as the app does, computes every candidate
sentence's features once (`Answerer.sentence_features`: the model's cosine, lexical overlap, heading
overlap, chunk rank), then re-scores them under several weightings and prints, per weighting, the
share of answers containing a gold answer string (SQuAD files, JSONL lines with "answers"), the share
whose best sentence alone does (lead), the share of quoted sentences that support the answer
(precision, `rag.eval_answers.judge_sentences`), the share citing the gold document, and the mean
answer length. Baselines in the same run: the first sentence of the top hit, cosine only, overlap
only, and the chooser before the focus cues and the other-document bar.

`--cache DIR` keeps each file's retrieved candidates and their cosines (the slow part, with e5) so
that reruns only re-measure the cheap features and re-score.

    RAG_DATA_DIR=/tmp/answers-eval .venv/bin/python bench/answer_chooser.py FILE [--max-questions N] [--grid]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.answer import extractive  # noqa: E402
from rag.answer.answerer import Answerer, SentenceFeatures, cited_pieces  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embed.providers import resolve  # noqa: E402
from rag.eval_answers import contains_gold, judge_sentences  # noqa: E402
from rag.evaluate import Question, ensure_collection, eval_info, load, same_source, sample  # noqa: E402
from rag.retrieve.searcher import Searcher  # noqa: E402

W = extractive.DEFAULT_WEIGHTS
SPLITTER = hashlib.blake2b((REPO / "rag/answer/sentences.py").read_bytes(), digest_size=6).hexdigest()
"""Cached candidates are only good for the sentence splitter that made them."""
BEFORE = replace(W, focus=0.0, keep_other=0.25, keep_above=0.25, keep_far=0.25)
NAMED = {
    "cosine only": replace(W, cosine=1, overlap=0, heading=0, lead=0, rank=0, language=0, focus=0),
    "overlap only": replace(W, cosine=0, overlap=1, heading=0, lead=0, rank=0, language=0, focus=0),
    "cosine+overlap": replace(W, heading=0, lead=0, rank=0, language=0, focus=0),
    "before (no focus, other document within 0.25)": BEFORE,
    "default": W,
}


def collect(path: Path, max_questions: int | None, seed: int,
            cache: Path | None = None) -> tuple[list[Question], list[SentenceFeatures], bool]:
    settings = get_settings()
    dataset = load(path)
    questions = sample(dataset.questions, max_questions, seed)
    key = hashlib.blake2b(f"{path.resolve()}|{max_questions}|{seed}|{settings.local_model}|"
                          f"{os.environ.get('RAG_RETRIEVAL_MODE', '')}|{SPLITTER}".encode(), digest_size=6).hexdigest()
    cached = cache / f"{key}.pickle" if cache else None
    if cached and cached.exists():
        feats: list[SentenceFeatures] = pickle.loads(cached.read_bytes())
        for q, f in zip(questions, feats, strict=True):  # re-measure: cheap, and the rules may change
            cosines = np.array([c.cosine for c in f.candidates])
            extractive.measure(q.text, f.candidates, cosines, f.terms)
        return questions, feats, dataset.kind == "squad"
    if dataset.kind == "squad":
        info = eval_info(resolve(settings), dataset.digest)
        ensure_collection(settings, info, dataset)
        searcher = Searcher(settings, info)
    else:
        searcher = Searcher(settings)
    answerer = Answerer(settings, searcher=searcher)
    feats = []
    for q in questions:
        result = searcher.search(q.text)
        feats.append(answerer.sentence_features(q.text, result))
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps(feats))
    return questions, feats, dataset.kind == "squad"


def judge(questions: list[Question], feats: list[SentenceFeatures], exact: bool,
          weights: extractive.Weights | None) -> dict[str, float]:
    """weights None: the first quotable sentence of the top hit."""
    contains = cites = chars = lead = quoted = supported = off = 0
    for q, f in zip(questions, feats, strict=True):
        if weights is None:
            chosen = [c for c in f.candidates if c.hit.rank == 1][:1]
            for c in chosen:
                c.score = 1.0
        else:
            chosen = extractive.choose(f.scored(weights), weights)
        text = "".join(cited_pieces(chosen))
        chars += len(text)
        contains += contains_gold(text, q.answers)
        cites += any((c.hit.source == q.gold) if exact else same_source(c.hit.source, q.gold) for c in chosen)
        judged = judge_sentences(chosen, q, exact)
        lead += judged.lead_contains
        quoted += judged.quoted
        supported += judged.supported
        off += judged.supported < judged.quoted
    n = max(len(questions), 1)
    return {"answer_contains": round(contains / n, 4), "lead_contains": round(lead / n, 4),
            "precision": round(supported / max(quoted, 1), 4), "off_topic": round(off / n, 4),
            "cites_gold": round(cites / n, 4), "mean_answer_chars": round(chars / n, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-questions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", action="store_true", help="also search a small grid around the default")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sort", default="answer_contains", help="the grid's best rows by this figure")
    parser.add_argument("--cache", type=Path, help="keep the retrieved candidates here between runs")
    args = parser.parse_args()
    started = time.perf_counter()
    questions, feats, exact = collect(args.file, args.max_questions, args.seed, args.cache)
    rows = {"first sentence of top hit": judge(questions, feats, exact, None)}
    rows.update({name: judge(questions, feats, exact, w) for name, w in NAMED.items()})
    if args.grid:
        for focus, other, above, far in itertools.product(
            (0.0, 0.1, 0.2, 0.3), (0.25, 0.5), (0.1, 0.25, 0.5), (0.05, 0.1, 0.15, 0.25),
        ):
            w = replace(W, focus=focus, keep_other=other, keep_above=above, keep_far=far)
            rows[f"focus {focus} other {other} above {above} far {far}"] = judge(questions, feats, exact, w)
    if args.json:
        json.dump({"file": str(args.file), "questions": len(questions), "rows": rows}, sys.stdout, indent=2)
        return 0
    print(f"{args.file} · {len(questions)} questions · {time.perf_counter() - started:.0f} s")  # noqa: T201
    named = [(name, rows[name]) for name in ["first sentence of top hit", *NAMED]]
    best = sorted(rows.items(), key=lambda r: -r[1][args.sort])[:15]
    print("contains  lead   precision  off-topic  cites  chars")  # noqa: T201
    for name, row in named + [("---", dict.fromkeys(rows["default"], 0))] + best:
        print(f"{row['answer_contains']:.3f}    {row['lead_contains']:.3f}  {row['precision']:.3f}"  # noqa: T201
              f"      {row['off_topic']:.3f}      {row['cites_gold']:.3f}  {row['mean_answer_chars']:6.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
