"""Whether the retrieved chunks hold an answer at all: abstain honestly when the evidence is weak.

Two pieces of evidence, both taken from the hits the user is shown (so a source filter is obeyed):
  - `cosine`: the best hit's cosine similarity to the question. Its scale belongs to the embedding
    model (USE spreads 0-0.6, e5 sits in 0.7-0.9), so the bar is calibrated per model;
  - `coverage`: the best hit's IDF-weighted share of the question's content terms
    (`rag.answer.extractive.Terms`); model-free, but blind across languages.
The answerer answers when either clears its model's bar. Bars were calibrated with
`bench/abstain.py`: questions the collection cannot answer (JSQuAD and XQuAD dev questions asked
against docs_corpus) against questions it can (docs_corpus/qa.jsonl); the figures are in the README.
Models without a calibration (OpenAI's, any other) never abstain here: their scale is unknown, and
in LLM mode the prompt already asks the model to say when the sources do not hold the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.config import Settings


@dataclass(frozen=True)
class Calibration:
    cosine: float
    """A best-hit cosine at or above this is evidence enough on its own."""
    coverage: float
    """So is a best-hit term coverage at or above this."""


CALIBRATIONS: dict[str, Calibration] = {
    "use-multilingual-v3": Calibration(cosine=0.30, coverage=0.5),
    "multilingual-e5-small": Calibration(cosine=0.85, coverage=0.5),
}


@dataclass(frozen=True)
class Evidence:
    cosine: float
    coverage: float
    calibration: Calibration | None

    @property
    def enough(self) -> bool:
        cal = self.calibration
        return cal is None or self.cosine >= cal.cosine or self.coverage >= cal.coverage

    def why_not(self, lang: str) -> str:
        """One sentence saying why there is no answer, in the user's language."""
        cal = self.calibration
        assert cal is not None
        if lang == "ja":
            terms = (f"質問の語の {self.coverage:.0%} しか含んでいません" if self.coverage > 0
                     else "質問の語を一つも含んでいません")
            return (f"最も近いチャンクでも類似度 {self.cosine:.2f}（このモデルで答えが見つかる目安は "
                    f"{cal.cosine:.2f} 以上）で、{terms}。近いチャンクを下に示します。")
        terms = (f"holds {self.coverage:.0%} of the question's terms" if self.coverage > 0
                 else "holds none of the question's terms")
        return (f"The closest chunk has similarity {self.cosine:.2f} (with this model, answers usually "
                f"score {cal.cosine:.2f} or more) and {terms}. The nearest chunks are listed below.")


def calibration_for(settings: Settings, model: str) -> Calibration | None:
    """The model's calibrated bars; settings may override or switch abstention off."""
    if not settings.answer_abstain:
        return None
    base = CALIBRATIONS.get(model)
    if settings.answer_min_cosine is not None:
        base = Calibration(settings.answer_min_cosine, base.coverage if base else 0.5)
    return base
