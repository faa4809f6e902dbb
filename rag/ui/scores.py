"""Which number ranked a hit, and what to call each number the UI shows beside it.

Hybrid mode orders hits by the fused score, BM25 mode by the BM25 score, vector mode by the cosine:
the number shown first (and as the bar) is the one that put the hit at its rank, so ranks and
numbers never look out of order. The cosine is always shown too, labelled as a cosine. BM25 cannot
match a chunk written in the other script than the question (no shared words), so such a chunk
reads "BM25 — other language" rather than "BM25 0.000". No Streamlit import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.lang import is_japanese

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit

_NAMES = {
    "fused": {"ja": "融合スコア", "en": "fused score"},
    "bm25": {"ja": "BM25 スコア", "en": "BM25 score"},
    "cosine": {"ja": "コサイン類似度", "en": "cosine similarity"},
}


@dataclass(frozen=True)
class ScoreRange:
    """Slider bounds for the score threshold, and where the figures come from."""

    low: float
    high: float
    typical: str


SCORE_RANGES: dict[str, ScoreRange] = {
    # top-5 vector hits of the 70 docs_corpus/qa.jsonl questions: 5th-95th percentile 0.23-0.54,
    # best hit 0.27-0.77; an unrelated question's best hit scores 0.04-0.15 (issue 18)
    "use-multilingual-v3": ScoreRange(0.0, 0.8, "0.23–0.54"),
    # README (trust's measurement on docs_corpus): an answering question's best hit 0.86-0.92 (p10-p90),
    # an ordinary chunk 0.80, an off-topic question's best hit 0.75-0.83
    "multilingual-e5-small": ScoreRange(0.7, 1.0, "0.86–0.92"),
}
DEFAULT_RANGE = ScoreRange(0.0, 1.0, "")


def score_range(model: str) -> ScoreRange:
    """The threshold slider's range for this embedding model (0-1 for a model not measured)."""
    for name, found in SCORE_RANGES.items():
        if name in model:
            return found
    return DEFAULT_RANGE


def name(kind: str, lang: str) -> str:
    return _NAMES[kind]["ja" if lang == "ja" else "en"]


def ranking_kind(hit: Hit) -> str:
    """Which score put this hit at its rank: `fused`, `bm25` or `cosine`."""
    if hit.fused_score is not None:
        return "fused"
    if hit.bm25_score is not None and hit.bm25_rank == hit.rank:
        return "bm25"
    return "cosine"


def ranking_value(hit: Hit) -> float:
    kind = ranking_kind(hit)
    if kind == "fused":
        return float(hit.fused_score or 0.0)
    if kind == "bm25":
        return float(hit.bm25_score or 0.0)
    return hit.score


def cross_script(hit: Hit, question: str) -> bool:
    """True when BM25 cannot match this chunk at all: it is in the other script than the question."""
    return is_japanese(hit.text) != is_japanese(question)


def bm25_text(hit: Hit, question: str, lang: str) -> str | None:
    """`BM25 12.3 (rank 2)`, `BM25 — other language`, `BM25 0 — no shared words`, or None."""
    if hit.bm25_score is None:
        return None
    if cross_script(hit, question):
        return "BM25 — " + ("別の言語（共通の語なし）" if lang == "ja" else "other language, no shared words")
    if hit.bm25_score <= 0:
        return "BM25 0 — " + ("共通の語なし" if lang == "ja" else "no shared words")
    rank = f" ({'順位' if lang == 'ja' else 'rank'} {hit.bm25_rank})" if hit.bm25_rank else ""
    return f"BM25 {hit.bm25_score:.2f}{rank}"


def score_line(hit: Hit, question: str, lang: str) -> str:
    """Everything but the ranking score, each number named: `cosine 0.105 · BM25 24.9 (rank 3)`."""
    parts = []
    if ranking_kind(hit) != "cosine":
        parts.append(f"{name('cosine', lang)} {hit.score:.3f}")
    bm25 = bm25_text(hit, question, lang) if ranking_kind(hit) != "bm25" else None
    if bm25:
        parts.append(bm25)
    return " · ".join(parts)


def rank_cell(value: int | None) -> str:
    """A rank for a table: the number, or `—` when the hit was not in that index's candidates."""
    return "—" if value is None else str(value)
