"""Next-token probabilities from a chat model's logprobs: the chosen token and its alternatives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer.answerer import TokenLogprob


@dataclass(frozen=True)
class TokenChoice:
    """One generated token: how likely it was, and what else the model considered."""

    position: int
    token: str
    probability: float
    alternatives: list[tuple[str, float]]
    """(token, probability), most likely first; the chosen token included."""

    @property
    def runner_up(self) -> tuple[str, float] | None:
        return next(((t, p) for t, p in self.alternatives if t != self.token), None)


def token_choices(logprobs: Sequence[TokenLogprob] | None) -> list[TokenChoice]:
    """Logprobs turned into probabilities (exp), alternatives best first."""
    out: list[TokenChoice] = []
    for i, lp in enumerate(logprobs or []):
        alts = sorted(((t, math.exp(p)) for t, p in lp.top), key=lambda a: -a[1])
        out.append(TokenChoice(i, lp.token, math.exp(lp.logprob), alts))
    return out


def logprob_table(choices: Sequence[TokenChoice]) -> list[dict[str, Any]]:
    """Rows for a table: position, token, probability and the alternatives as text."""
    return [
        {
            "#": c.position,
            "token": c.token,
            "p": round(c.probability, 4),
            "alternatives": "  ·  ".join(f"{t!r} {p:.1%}" for t, p in c.alternatives),
        }
        for c in choices
    ]
