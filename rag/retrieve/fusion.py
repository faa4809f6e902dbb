"""The arithmetic of one hybrid score, kept with the hit so a person can redo the sum.

Hybrid fusion (`rag.retrieve.hybrid`) turns a cosine and a BM25 score into one number through
min-max scaling over this query's candidates and a weighted sum. `Fusion` records every operand
of that sum for one hit (the bounds of both scales, the weight in force, whether the cross-script
credit replaced BM25), so the UI and `rag ask --json` can show `w · v + (1 − w) · b = fused`
with the real numbers. Computing the fusion itself stays in `hybrid`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Fusion:
    """Every operand of one candidate's fused score."""

    method: Literal["score", "rrf"]
    weight: float
    """w, the vector share, as the fusion used it (settings or the model's own)."""
    cosine: float
    bm25: float
    vector_norm: float
    """score: min-max(cosine) over the candidates; rrf: 1 / (k + vector rank), 0 if unranked."""
    lexical_norm: float
    """score: min-max(BM25), or the cross-script credit (weight × `cross_norm`); rrf: 1 / (k + BM25 rank)."""
    fused: float
    cosine_min: float = 0.0
    cosine_max: float = 0.0
    bm25_min: float = 0.0
    bm25_max: float = 0.0
    cross_script: bool = False
    """The chunk is in the other script than the question: BM25 was replaced by vector credit."""
    cross_script_weight: float = 0.0
    cross_norm: float = 0.0
    """min-max(cosine) among the other-script candidates only (what the credit multiplies)."""
    cross_cosine_min: float = 0.0
    cross_cosine_max: float = 0.0
    cross_candidates: int = 0
    """How many candidates were in the other script (the bounds of `cross_norm`)."""
    rrf_k: int = 0
    vector_rank: int = 0
    bm25_rank: int = 0
    candidates: int = 0
    """How many candidates the min-max bounds were taken over."""

    @property
    def vector_part(self) -> float:
        return self.weight * self.vector_norm

    @property
    def lexical_part(self) -> float:
        return (1 - self.weight) * self.lexical_norm

    def as_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["vector_part"] = round(self.vector_part, 6)
        out["lexical_part"] = round(self.lexical_part, 6)
        return out
