"""What a cosine means for this model and this collection: percentiles, typical bands, and a plain
note when retrieval looks weak.

A cosine of 0.45 is a strong match for the USE model, and 0.82 a poor one for e5, whose cosines
all sit high; so beside each score we give its percentile among the question's similarities to
every chunk of the collection (what share of chunks it beats), and one line on the model's band.
The bands are measured where we could measure them (see `BANDS`); the retrieval note compares the
best hit with its model's band, because within one question's similarities even a poor best hit
beats almost every chunk (on docs_corpus, off-topic questions' best hits still had z ≈ 2.4–4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit


@dataclass(frozen=True)
class Band:
    """Where this model's cosines fall, question against chunk."""

    answer_low: float
    """The best hit for a question the documents answer scores at least this about 90 % of the time."""
    answer_high: float
    unrelated_best: float
    """Off-topic questions' best hits score about this or less."""
    typical_chunk: float
    """The median similarity of a question to an ordinary, unrelated chunk."""
    weak_below: float
    """A best hit below this is called weak: between the off-topic questions' highest best hit and
    the answerable questions' lowest, where they were measured."""
    measured: str
    remark: str = ""
    """How this model's scale misleads, in one clause."""


BANDS: dict[str, Band] = {
    "use-multilingual-v3": Band(
        0.345, 0.584, 0.155, 0.127, 0.22,
        "docs_corpus (156 chunks): 70 qa.jsonl questions' best hits p10–p90 0.345–0.584 (lowest "
        "0.273), median over all chunks 0.127; 8 off-topic questions' best hits 0.079–0.155",
        "the USE model spreads its scores wide, so 0.5 is strong here, not \"50 %\"",
    ),
    "multilingual-e5-small": Band(
        0.861, 0.924, 0.834, 0.80, 0.835,
        "docs_corpus (156 chunks): 70 qa.jsonl questions' best hits p10–p90 0.861–0.924 (lowest "
        "0.836), median over all chunks 0.80; 8 off-topic questions' best hits 0.749–0.834",
        "e5's cosines sit in a narrow high band, so 0.82 is weak here, not \"82 %\"",
    ),
}


def model_line(model: str) -> str:
    """One line on how to read this model's cosines."""
    band = BANDS.get(model)
    if band is None:
        return (f"{model}: no measured band here; read the percentile, which means the same for "
                "every model.")
    return (f"{model}: a passage that answers the question usually scores "
            f"{band.answer_low:.2f}–{band.answer_high:.2f}; an ordinary unrelated chunk about "
            f"{band.typical_chunk:.2f}; {band.remark}.")


def percentile(similarities: np.ndarray, value: float) -> float:
    """Share of chunks (0–100) whose similarity to the question is below `value`."""
    if similarities.size == 0:
        return 0.0
    return float((similarities < value - 1e-6).mean() * 100)


def hit_percentiles(similarities: np.ndarray, hits: Sequence[Hit]) -> dict[int, float]:
    return {h.rank: percentile(similarities, h.score) for h in hits}


MIN_CHUNKS_FOR_PERCENTILE = 20
"""Below this many chunks a percentile moves in steps too coarse to mean much."""


@dataclass(frozen=True)
class RetrievalNote:
    weak: bool
    text_ja: str
    text_en: str

    def text(self, lang: str) -> str:
        return self.text_ja if lang == "ja" else self.text_en


def retrieval_note(hits: Sequence[Hit], similarities: np.ndarray, model: str) -> RetrievalNote | None:
    """A plain-language note on the best hit: weak for this model, or found by words not meaning.

    None when there is nothing to warn about.
    """
    if not hits or similarities.size == 0:
        return None
    best = max(h.score for h in hits)
    top = hits[0]
    pct = percentile(similarities, top.score)
    band = BANDS.get(model)
    if band is not None and best < band.weak_below:
        return RetrievalNote(
            True,
            f"いちばん近い出典でも類似度は {best:.2f} です。このモデルでは、答えを含む文書は"
            f"ふつう {band.answer_low:.2f}〜{band.answer_high:.2f}、無関係な質問でも "
            f"{band.unrelated_best:.2f} 前後になります。資料にこの答えが含まれていない可能性が"
            "高いので、出典を開いて確かめてください。",
            f"The closest source scores only {best:.2f}. With this model a passage that answers "
            f"the question usually scores {band.answer_low:.2f}–{band.answer_high:.2f}, and even "
            f"an off-topic question's best match reaches about {band.unrelated_best:.2f}. The "
            "documents probably do not contain the answer: open the sources and check.",
        )
    if top.bm25_score is not None and similarities.size >= MIN_CHUNKS_FOR_PERCENTILE and pct < 90:
        return RetrievalNote(
            False,
            f"1 位の出典は意味の近さでは全チャンクの上位 {100 - pct:.0f}% に入りません"
            f"（{pct:.0f} パーセンタイル）。主に質問と同じ語を含むことで選ばれています。",
            f"The top source is not especially close in meaning (it beats {pct:.0f} % of chunks); "
            "it was chosen mostly because it shares words with the question.",
        )
    return None
