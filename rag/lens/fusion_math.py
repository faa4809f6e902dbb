"""The hybrid score written out as arithmetic a person can redo, with the real numbers.

Each line is `label`, the formula with the operands filled in, and the result, rounded to the
same 6 decimals everywhere, so the parts shown add up to the fused score shown (a test holds the
UI to that). The numbers come from `rag.retrieve.fusion.Fusion`, recorded when the hit was fused.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieve.fusion import Fusion

DECIMALS = 6


def num(x: float) -> str:
    return f"{x:.{DECIMALS}f}"


@dataclass(frozen=True)
class Line:
    label: str
    formula: str
    value: float


def fusion_lines(f: Fusion) -> list[Line]:
    """The steps from the raw scores to the fused score: scale each side, weigh, add."""
    w = f.weight
    if f.method == "rrf":
        v = (f"{num(w)} / ({f.rrf_k} + {f.vector_rank})" if f.vector_rank
             else "0 (not in the vector list)")
        b = (f"{num(1 - w)} / ({f.rrf_k} + {f.bm25_rank})" if f.bm25_rank
             else "0 (not in the BM25 list)")
        return [
            Line("vector part", v, f.vector_part),
            Line("keyword part", b, f.lexical_part),
            Line("fused", f"{num(f.vector_part)} + {num(f.lexical_part)}", f.fused),
        ]
    lines = [Line("minmax(cosine)",
                  f"({num(f.cosine)} − {num(f.cosine_min)}) / ({num(f.cosine_max)} − {num(f.cosine_min)})",
                  f.vector_norm)]
    if f.cross_script:
        lines.append(Line(f"minmax(cosine) among the {f.cross_candidates} other-script candidates",
                          f"({num(f.cosine)} − {num(f.cross_cosine_min)}) / "
                          f"({num(f.cross_cosine_max)} − {num(f.cross_cosine_min)})", f.cross_norm))
        credit = f"{num(f.cross_script_weight)} × {num(f.cross_norm)}"
        if f.bm25 > 0:  # the credit is a floor: a real keyword match keeps its own evidence
            span = f.bm25_max - f.bm25_min
            own = (f.bm25 - f.bm25_min) / span if span > 1e-12 else 1.0
            credit = f"max({credit}, minmax(BM25) {num(own)})"
        lines.append(Line("keyword side (cross-script credit)", credit, f.lexical_norm))
    else:
        lines.append(Line("minmax(BM25)",
                          f"({num(f.bm25)} − {num(f.bm25_min)}) / ({num(f.bm25_max)} − {num(f.bm25_min)})",
                          f.lexical_norm))
    lines += [
        Line("vector part", f"{num(w)} × {num(f.vector_norm)}", f.vector_part),
        Line("keyword part", f"{num(1 - w)} × {num(f.lexical_norm)}", f.lexical_part),
        Line("fused", f"{num(f.vector_part)} + {num(f.lexical_part)}", f.fused),
    ]
    return lines


def summary(f: Fusion) -> str:
    """One line: `fused = w · minmax(cos) + (1 − w) · minmax(bm25) = a + b = F`."""
    if f.method == "rrf":
        head = f"fused = w / (k + vector rank) + (1 − w) / (k + BM25 rank), w = {num(f.weight)}, k = {f.rrf_k}"
    else:
        keyword = "cross-script credit" if f.cross_script else "minmax(BM25)"
        head = f"fused = {num(f.weight)} · minmax(cos) + {num(1 - f.weight)} · {keyword}"
    return f"{head} = {num(f.vector_part)} + {num(f.lexical_part)} = {num(f.fused)}"
