"""Which source sentence supports each answer sentence, and how strongly.

An answer is split into sentences, each with the `[n]` it cites. Each sentence is matched against
the sentences of the sources it cites (all sources when it cites none) by term overlap: the share
of the answer sentence's BM25 terms (character bigrams and single kanji for Japanese, words for
English, the tokenizer `rag.retrieve.bm25` uses) that the source sentence also holds. A quoted
sentence scores 1.0; an LLM sentence below `SUPPORT_THRESHOLD` is marked unsupported.
Overlap, not the embedder, because it needs no model call and on JSQuAD it picks the sentence
holding the answer as often as e5 does (0.85 vs 0.84, /work/shared/DESIGN.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rag.retrieve.bm25 import tokenize

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit

SUPPORT_THRESHOLD = 0.5
"""An answer sentence whose best source sentence shares less than this share of its terms is
marked unsupported (a paraphrase keeps most content words; an invented claim does not)."""

_CITE = re.compile(r"\s*\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_END = re.compile(r"[。！？!?]+[」』）)\"']*|\.(?=\s|$|\[)|\n")


@dataclass(frozen=True)
class SourceSentence:
    start: int
    end: int
    text: str


def sentences(text: str) -> list[SourceSentence]:
    """Sentences of `text` with their character spans: 。！？ and . ! ? before a space, line breaks."""
    out = []
    pos = 0
    for end in [m.end() for m in _END.finditer(text)] + [len(text)]:
        raw = text[pos:end]
        body = raw.strip()
        if body and any(ch.isalnum() for ch in body):
            start = pos + (len(raw) - len(raw.lstrip()))
            out.append(SourceSentence(start, start + len(body), body))
        pos = end
    return out


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


@dataclass(frozen=True)
class Support:
    """One answer sentence and the source sentence that supports it best."""

    sentence: str
    """The answer sentence, citations removed."""
    cited: list[int]
    rank: int | None
    """The source (hit rank) of the best supporting sentence; None when there are no sources."""
    source_sentence: str | None
    start: int | None
    """Where `source_sentence` starts in that hit's chunk text."""
    end: int | None
    score: float
    supported: bool

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(self.score, 4)
        return out


def answer_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """(sentence without citations, cited numbers) in order; a citation written after the full
    stop (`…です。[1]`) belongs to the sentence before it."""
    out: list[tuple[str, list[int]]] = []
    for piece in sentences(answer):
        text = piece.text
        lead = re.match(r"^(?:\s*\[\d+(?:\s*[,，、]\s*\d+)*\])+", text)
        if lead and out:
            out[-1][1].extend(_numbers(lead.group(0)))
            text = text[lead.end():]
        body = strip_citations(text)
        if body and any(ch.isalnum() for ch in body):
            out.append((body, _numbers(text)))
    return out


def _numbers(text: str) -> list[int]:
    found: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,，、]", m.group(1)):
            if int(part) not in found:
                found.append(int(part))
    return found


def overlap(claim: str, evidence: str) -> float:
    """Share of `claim`'s distinct terms that `evidence` also holds (0 when the claim has none)."""
    terms = set(tokenize(claim))
    if not terms:
        return 0.0
    return len(terms & set(tokenize(evidence))) / len(terms)


def best_support(claim: str, hits: Sequence[Hit]) -> tuple[Hit, SourceSentence, float] | None:
    best: tuple[Hit, SourceSentence, float] | None = None
    for hit in hits:
        for sent in sentences(hit.text):
            score = overlap(claim, sent.text)
            if best is None or score > best[2]:
                best = (hit, sent, score)
    return best


def ground(answer: str, hits: Sequence[Hit], *, threshold: float = SUPPORT_THRESHOLD) -> list[Support]:
    """Every answer sentence with its best supporting source sentence, cited sources first."""
    by_rank = {h.rank: h for h in hits}
    out = []
    for sentence, cited in answer_sentences(answer):
        pool = [by_rank[n] for n in cited if n in by_rank]
        found = best_support(sentence, pool) if pool else None
        if found is None or found[2] < threshold:  # uncited, or the cited source does not hold it
            found = max((f for f in (found, best_support(sentence, hits)) if f is not None),
                        key=lambda f: f[2], default=None)
        if found is None or found[2] == 0:  # nothing in the sources shares a single term
            out.append(Support(sentence, cited, None, None, None, None, 0.0, False))
            continue
        hit, sent, score = found
        out.append(Support(sentence, cited, hit.rank, sent.text, sent.start, sent.end, score,
                           score >= threshold))
    return out


def support_for(supports: Sequence[Support], rank: int) -> Support | None:
    """The best-supported answer sentence that cites (or is grounded in) source `rank`."""
    mine = [s for s in supports if rank in s.cited and s.rank == rank] or \
           [s for s in supports if s.rank == rank]
    return max(mine, key=lambda s: s.score, default=None)


def confidence(logprobs: Sequence[Any] | None) -> float | None:
    """exp(mean token logprob) of a generated answer (kotaemon's measure): the geometric mean of
    the probabilities the model gave its own tokens. None without logprobs (extractive mode, or a
    server that returns none)."""
    values = [float(lp.logprob) for lp in logprobs or []]
    if not values:
        return None
    import math

    return math.exp(sum(values) / len(values))
