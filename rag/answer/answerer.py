"""Answer a question from retrieved chunks: with an LLM, or extractively offline.

One interface for the UI and the CLI: `Answerer.stream(...)` yields text pieces as they come and
then the final `Answer`; `Answerer.answer(...)` returns just the `Answer`. Modes:
`llm` (a chat model through `rag.answer.llm`, follow-ups rewritten into standalone questions first) and
`extractive` (the retrieved chunks' sentences that best match the question, scored with the same
embedder, in document order with [n] citations). Retrieved text is only ever data: extractive mode
never interprets it, and the LLM prompt marks it as such. Retrieval lives in `rag.retrieve.searcher`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rag.answer.llm import ChatLLM, LLMInfo, Piece, answer_messages, resolve_llm
from rag.config import Settings
from rag.lang import lang_of
from rag.retrieve.hits import Hit, SearchResult
from rag.retrieve.options import SearchOptions
from rag.retrieve.searcher import Searcher

MAX_SENTENCES = 3
RELATIVE_FLOOR = 0.85
"""Extractive mode keeps sentences scoring at least this fraction of the best sentence's score."""
MIN_SENTENCE_CHARS = 6
SHORT_LINE_CHARS = 20

_SENTENCE_END = re.compile(r"(?<=[。！？])|(?<=[.!?])(?=\s)|\n+")
_STOPS = "。！？.!?"
_HEADING_MARKS = ("#", "|", "```", "■", "□", "●", "◆", "◇", "【", "===", "---")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•・]|\d+[.)])\s+")
_CITATION = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")

EXTRACTIVE_LABEL = {
    "ja": "抽出モード: LLM未設定（文書から質問に最も近い文をそのまま引用しています）",
    "en": "Extractive mode: no LLM configured (quoting the document sentences closest to the question)",
}
NO_ANSWER = {
    "ja": "資料には該当する情報が見つかりませんでした。",
    "en": "The documents do not seem to contain this information.",
}


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]
    """Alternatives (token, logprob), best first, the chosen one included."""


@dataclass
class Answer:
    question: str
    """As asked."""
    standalone_question: str
    """After history rewriting (== question when there is no history or in extractive mode)."""
    text: str
    """The answer with [n] citations, n = hit rank."""
    mode: Literal["llm", "extractive"]
    citations: list[int]
    """The n's cited, in order of first appearance."""
    search: SearchResult
    llm: str | None
    """Model name in llm mode."""
    logprobs: list[TokenLogprob] | None
    """llm mode, when the server returned them."""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return lang_of(self.question)

    def cited_hits(self) -> list[Hit]:
        by_rank = {h.rank: h for h in self.search.hits}
        return [by_rank[n] for n in self.citations if n in by_rank]

    def as_dict(self) -> dict[str, Any]:
        """The shape `rag ask --json` prints."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "mode": self.mode,
            "citations": self.citations,
            "sources": [h.as_dict() for h in self.search.hits],
            "embedding": self.search.embedding.as_dict(),
            "llm": self.llm,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def parse_citations(text: str, valid: Sequence[int] | None = None) -> list[int]:
    """Cited numbers in order of first appearance; `[1][2]` and `[1, 2]` both count."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        for part in re.split(r"[,，、]", match.group(1)):
            n = int(part)
            if n not in seen and (valid is None or n in valid):
                seen.append(n)
    return seen


def cite(sentence: str, n: int) -> str:
    """The sentence with its citation before the final stop: `…です[1]。`, `… ranking [4].`"""
    body, stop = (sentence[:-1], sentence[-1]) if sentence[-1] in _STOPS else (sentence, "")
    space = "" if lang_of(body[-1:]) == "ja" else " "
    return f"{body}{space}[{n}]{stop}"


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs: Japanese 。！？, English . ! ? before a space, and line breaks.

    Headings, title-like lines and table rows are dropped (they name a topic, they do not
    answer), list markers are stripped, and fragments too short to say anything are skipped.
    """
    out: list[tuple[int, str]] = []
    pos = 0
    for part in _SENTENCE_END.split(text):
        start = text.find(part, pos) if part else pos
        pos = start + len(part)
        line = part.strip()
        if not line or line.startswith(_HEADING_MARKS):
            continue
        line = _LIST_MARK.sub("", line).strip()
        if len(line) < MIN_SENTENCE_CHARS or (line[-1] not in _STOPS and len(line) < SHORT_LINE_CHARS):
            continue  # too short to say anything, or a title-like line without a full stop
        out.append((start, line))
    return out


@dataclass
class _Candidate:
    hit: Hit
    offset: int
    text: str
    score: float = 0.0


class Answerer:
    """Retrieval plus answering for one set of settings; cheap to keep for the process's life."""

    def __init__(self, settings: Settings, *, searcher: Searcher | None = None) -> None:
        self.settings = settings
        self.info: LLMInfo = resolve_llm(settings)
        self.searcher = searcher or Searcher(settings)
        self.llm = ChatLLM(settings, self.info) if self.info.mode == "llm" else None

    def answer(self, question: str, **kwargs: Any) -> Answer:
        for item in self.stream(question, **kwargs):
            if isinstance(item, Answer):
                return item
        raise AssertionError("stream ended without an Answer")

    def stream(
        self,
        question: str,
        *,
        history: Sequence[dict[str, str]] | None = None,
        options: SearchOptions | None = None,
        **changes: Any,
    ) -> Iterator[str | Answer]:
        """Text pieces as they are produced, then the final `Answer` (always last).

        `changes` are `SearchOptions` fields (`k=3`), applied over `options`.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        standalone = question
        if self.llm is not None and history:
            standalone = self.llm.rewrite(question, history)
            timings["rewrite_ms"] = _ms_since(started)
        mark = time.perf_counter()
        result = self.searcher.search(standalone, options, **changes)
        timings["retrieve_ms"] = _ms_since(mark)
        timings.update(result.timings_ms)
        mark = time.perf_counter()
        if self.llm is None:
            text = yield from self._extractive(question, result)
            logprobs = None
            timings["extract_ms"] = _ms_since(mark)
        else:
            text, logprobs = yield from self._generate(question, result, timings, mark)
            timings["generate_ms"] = _ms_since(mark)
        timings["total_ms"] = _ms_since(started)
        citations = parse_citations(text, [h.rank for h in result.hits])
        yield Answer(
            question=question, standalone_question=standalone, text=text, mode=self.info.mode,
            citations=citations, search=result, llm=self.info.model if self.llm else None,
            logprobs=logprobs, timings_ms=timings,
        )

    def _generate(
        self, question: str, result: SearchResult, timings: dict[str, float], mark: float
    ) -> Generator[str, None, tuple[str, list[TokenLogprob] | None]]:
        assert self.llm is not None
        if not result.hits:
            text = NO_ANSWER[lang_of(question)]
            yield text
            return text, None
        parts: list[str] = []
        entries: list[dict[str, Any]] = []
        piece: Piece
        for piece in self.llm.stream(answer_messages(question, result.hits)):
            if "first_token_ms" not in timings and piece.text:
                timings["first_token_ms"] = _ms_since(mark)
            entries.extend(piece.logprobs)
            if piece.text:
                parts.append(piece.text)
                yield piece.text
        logprobs = [_token_logprob(e) for e in entries] or None
        return "".join(parts), logprobs

    def _extractive(self, question: str, result: SearchResult) -> Generator[str, None, str]:
        """The best few sentences of the retrieved chunks, cited, in document order."""
        chosen = self.pick_sentences(result)
        if not chosen:
            text = NO_ANSWER[lang_of(question)]
            yield text
            return text
        pieces: list[str] = []
        for i, cand in enumerate(chosen):
            piece = cite(cand.text, cand.hit.rank)
            if i and not (lang_of(chosen[i - 1].text) == lang_of(cand.text) == "ja"):
                piece = " " + piece  # Japanese sentences follow each other without a space
            pieces.append(piece)
            yield piece
        return "".join(pieces)

    def pick_sentences(self, result: SearchResult) -> list[_Candidate]:
        """Score every sentence of every hit against the query vector, in one embedding call."""
        candidates: list[_Candidate] = []
        seen: set[str] = set()
        for hit in result.hits:  # best hit first, so a sentence repeated by overlap cites it
            for offset, sentence in split_sentences(hit.text):
                key = " ".join(sentence.split())
                if key not in seen:
                    seen.add(key)
                    candidates.append(_Candidate(hit, offset, sentence))
        if not candidates:
            return []
        vectors = np.asarray(self.searcher.embeddings.embed_documents([c.text for c in candidates]))
        query = np.asarray(result.query_vector)
        norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
        scores = vectors @ query / np.where(norms == 0, 1.0, norms)
        for cand, score in zip(candidates, scores, strict=True):
            cand.score = float(score)
        best = max(c.score for c in candidates)
        if best <= 0:
            return []
        ranked = sorted(candidates, key=lambda c: -c.score)
        chosen = [c for c in ranked[:MAX_SENTENCES] if c.score >= best * RELATIVE_FLOOR]
        first_rank: dict[str, int] = {}
        for hit in result.hits:
            first_rank.setdefault(hit.source, hit.rank)
        return sorted(chosen, key=lambda c: (first_rank[c.hit.source],
                                             int(c.hit.metadata.get("start", 0)) + c.offset))


def _token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    top = [(str(t.get("token", "")), float(t.get("logprob", 0.0))) for t in entry.get("top_logprobs") or []]
    token, logprob = str(entry.get("token", "")), float(entry.get("logprob", 0.0))
    if not any(t == token for t, _ in top):
        top.append((token, logprob))
    top.sort(key=lambda t: -t[1])
    return TokenLogprob(token, logprob, top)


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000
