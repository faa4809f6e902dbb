"""Extractive mode's choice laid open: every candidate sentence, the parts of its score, and why
the chosen ones won.

Nothing is re-scored here: the answerer's own chooser is asked again for the same question and
hits (`Answerer.sentence_features` → `scored()` → `rag.answer.extractive.choose`), and its
`Candidate` objects are read. The parts shown are the chooser's weights times the features it
measured; their sum is the score it ranked by (except where an announcing sentence passed its
score on, which the row says). An answerer without `sentence_features` (the older chooser) exposes
only the sentences it chose, with their cosine, and the view says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer.answerer import Answer, Answerer


@dataclass
class CandidateRow:
    source: int
    sentence: str
    parts: dict[str, float]
    score: float
    chosen: bool
    why: str


@dataclass
class ExtractiveReport:
    rows: list[CandidateRow]
    rule: str
    """How the chooser picks, in one sentence with its numbers."""
    complete: bool
    """False when the answerer exposes only its chosen sentences."""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "complete": self.complete, "candidates": [
            {"source": r.source, "sentence": r.sentence, "parts": {k: round(v, 6) for k, v in r.parts.items()},
             "score": None if math.isinf(r.score) else round(r.score, 6), "chosen": r.chosen, "why": r.why}
            for r in self.rows]}


def extractive_report(answer: Answer, answerer: Answerer) -> ExtractiveReport | None:
    if answer.mode != "extractive" or not answer.search.hits:
        return None
    if hasattr(answerer, "sentence_features"):
        return _from_features(answer, answerer)
    chosen = answerer.pick_sentences(answer.search)  # the older chooser: chosen sentences only
    rows = [CandidateRow(c.hit.rank, c.text, {"cosine": c.score}, c.score, True,
                         "among the top 3 and within 85 % of the best cosine") for c in chosen]
    return ExtractiveReport(rows, "the top 3 sentences by cosine to the question, each within 85 % "
                            "of the best", False,
                            ["This answerer does not expose the sentences it passed over."])


def _from_features(answer: Answer, answerer: Answerer) -> ExtractiveReport:
    from rag.answer import extractive

    weights = extractive.DEFAULT_WEIGHTS
    features = answerer.sentence_features(answer.question, answer.search)
    cands = features.scored(weights)
    chosen = extractive.choose(cands, weights)
    evidence = getattr(features, "evidence", None)
    abstained = evidence is not None and not evidence.enough
    chosen_ids = {id(c) for c in chosen}
    finite = [c for c in cands if c.score > -math.inf]
    best = max((c.score for c in finite), default=0.0)
    top = max(finite, key=lambda c: c.score) if finite else None
    low = min((c.cosine for c in cands), default=0.0)
    spread = max((c.cosine for c in cands), default=0.0) - low
    rows = []
    for cand in sorted(cands, key=lambda c: -c.score):
        scaled = (cand.cosine - low) / spread if spread > 1e-9 else 1.0
        parts = {
            "cosine": weights.cosine * scaled,
            "overlap": weights.overlap * cand.overlap,
            "heading": weights.heading * cand.heading_overlap,
            "lead": weights.lead * float(cand.sentence.lead),
            "rank": -weights.rank * (cand.hit.rank - 1),
            "language": weights.language * float(cand.same_language),
        }
        why = _why(cand, parts, best, top, chosen_ids, len(chosen), weights)
        if abstained and id(cand) in chosen_ids:
            why = "would have been quoted, but the evidence is too weak to answer (see the note)"
        rows.append(CandidateRow(cand.hit.rank, cand.text, parts, cand.score,
                                 id(cand) in chosen_ids and not abstained, why))
    rule = (f"best score, then up to {extractive.MAX_SENTENCES - 1} more within {weights.keep:g} of it "
            f"({weights.keep_other:g} for another chunk) and {weights.budget} characters in all; "
            f"cosine is min-max scaled over these {len(cands)} sentences")
    notes = [evidence.why_not(answer.lang)] if abstained else []
    return ExtractiveReport(rows, rule, True, notes)


def _why(cand: Any, parts: dict[str, float], best: float, top: Any, chosen_ids: set[int],
         n_chosen: int, weights: Any) -> str:
    if cand.score == -math.inf:
        return "announces what follows: its score went to the sentences it announces"
    passed_on = abs(sum(parts.values()) - cand.score) > 1e-9
    tail = " (score raised by the announcing sentence before it)" if passed_on else ""
    if cand is top:
        return "the best score" + tail
    if id(cand) in chosen_ids:
        return f"within {weights.keep:g} of the best ({best - cand.score:.3f} below)" + tail
    if best - cand.score > weights.keep:
        return f"{best - cand.score:.3f} below the best (more than {weights.keep:g})" + tail
    if top is not None and cand.hit is not top.hit and best - cand.score > weights.keep_other:
        return (f"another chunk than the best's, {best - cand.score:.3f} below the best "
                f"(more than {weights.keep_other:g})") + tail
    from rag.answer.extractive import MAX_SENTENCES

    if n_chosen >= MAX_SENTENCES:
        return f"{MAX_SENTENCES} better sentences already chosen" + tail
    return f"would make the answer longer than {weights.budget} characters" + tail
