"""The exact prompt an LLM answer was generated from, its token counts and cost, and the timings.

The messages are rebuilt with `rag.answer.llm.answer_messages` from the answer's own question and
hits, the same pure function with the same inputs the answerer called (a test compares them with
what the fake OpenAI server received). Token counts are cl100k_base: exact for gpt-4 and
gpt-3.5 models, an estimate for gpt-4o and gpt-4.1, which use o200k_base. Chat framing adds about
3 tokens per message and 3 for the reply (OpenAI's cookbook), counted in `input_tokens`.
Prices are list prices per million tokens for known OpenAI models, for an estimate only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.tokens import count_tokens

if TYPE_CHECKING:
    from rag.answer.answerer import Answer

PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}
"""(input, output) USD per 1M tokens, OpenAI's list prices as of 2025; check before budgeting."""
FRAMING_PER_MESSAGE = 3
FRAMING_REPLY = 3

STAGES = (
    ("rewrite_ms", "rewrite"), ("embed_ms", "embed"), ("search_ms", "search"),
    ("first_token_ms", "first token"), ("generate_ms", "generate"), ("extract_ms", "extract"),
    ("total_ms", "total"),
)


@dataclass(frozen=True)
class PromptMessage:
    role: str
    content: str
    tokens: int
    """cl100k_base tokens of the content."""


@dataclass(frozen=True)
class PromptReport:
    model: str | None
    messages: list[PromptMessage]
    input_tokens: int
    output_tokens: int
    output_counted: str
    """`logprobs` (the server's own token count) or `cl100k` (our count of the answer text)."""
    cost_usd: float | None
    """None when the model's price is unknown (a local server, a model not in the table)."""
    rewritten: str | None
    """The standalone question retrieval used, when a follow-up was rewritten."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content, "tokens": m.tokens}
                         for m in self.messages],
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "output_counted": self.output_counted,
            "estimated_cost_usd": None if self.cost_usd is None else round(self.cost_usd, 8),
            "rewritten_question": self.rewritten,
        }


def _role(message: Any) -> str:
    return {"human": "user", "ai": "assistant"}.get(message.type, message.type)


def prompt_report(answer: Answer) -> PromptReport | None:
    """The messages sent for an LLM answer; None in extractive mode or when nothing was sent."""
    if answer.mode != "llm" or not answer.search.hits:
        return None
    from rag.answer.llm import answer_messages

    sent = answer_messages(answer.question, answer.search.hits)
    messages = [PromptMessage(_role(m), str(m.content), count_tokens(str(m.content))) for m in sent]
    input_tokens = sum(m.tokens + FRAMING_PER_MESSAGE for m in messages) + FRAMING_REPLY
    if answer.logprobs:
        output_tokens, counted = len(answer.logprobs), "logprobs"
    else:
        output_tokens, counted = count_tokens(answer.text), "cl100k"
    rewritten = answer.standalone_question if answer.standalone_question != answer.question else None
    return PromptReport(answer.llm, messages, input_tokens, output_tokens, counted,
                        estimate_cost(answer.llm, input_tokens, output_tokens), rewritten)


def estimate_cost(model: str | None, input_tokens: int, output_tokens: int) -> float | None:
    """USD for one call at list price; dated snapshots (`gpt-4o-2024-08-06`) use their family's."""
    if not model:
        return None
    name = model.split("/")[-1]
    price = PRICES_USD_PER_MTOK.get(name) or next(
        (p for known, p in sorted(PRICES_USD_PER_MTOK.items(), key=lambda kv: -len(kv[0]))
         if name.startswith(known + "-")), None)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


def stage_timings(answer: Answer) -> list[tuple[str, float]]:
    """(stage, milliseconds) in pipeline order, only the stages this answer went through."""
    return [(label, answer.timings_ms[key]) for key, label in STAGES if key in answer.timings_ms]
