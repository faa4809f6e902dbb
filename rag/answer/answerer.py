"""Answer a question from retrieved chunks: with an LLM, or extractively offline.

One interface for the UI and the CLI: `Answerer.stream(...)` yields text pieces as they come and
then the final `Answer`; `Answerer.answer(...)` returns just the `Answer`. Modes:
`llm` (a chat model through `rag.answer.llm`, follow-ups rewritten into standalone questions first) and
`extractive` (the retrieved chunks' sentences with the best evidence, `rag.answer.extractive`, in
reading order with [n] citations, or "not in the documents" when `rag.answer.evidence` finds the
evidence too weak for this embedding model). Retrieved text is only ever data: extractive mode
never interprets it, and the LLM prompt marks it as such. Retrieval lives in `rag.retrieve.searcher`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rag.answer import extractive
from rag.answer.evidence import Evidence, calibration_for
from rag.answer.llm import ChatLLM, LLMInfo, Piece, answer_messages, resolve_llm
from rag.config import Settings
from rag.lang import is_japanese, lang_of
from rag.retrieve.hits import Hit, SearchResult
from rag.retrieve.options import SearchOptions
from rag.retrieve.searcher import Searcher

_STOPS = "。！？.!?"
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
    not_found: bool = False
    """The answerer declined: the documents do not hold the answer (the text says why)."""
    quoted: list[extractive.Candidate] = field(default_factory=list)
    """Extractive mode: the sentences quoted, in reading order, with their scores (`rag eval
    --answers` judges them one by one)."""

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
            "not_found": self.not_found,
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


def cited_pieces(chosen: Sequence[extractive.Candidate]) -> list[str]:
    """The chosen sentences as the reader sees them in the document (`rag.answer.markup`), each
    cited, as the pieces an extractive answer streams."""
    pieces: list[str] = []
    for i, cand in enumerate(chosen):
        piece = cite(cand.shown, cand.hit.rank)
        if i and not (lang_of(chosen[i - 1].text) == lang_of(cand.text) == "ja"):
            piece = " " + piece  # Japanese sentences follow each other without a space
        pieces.append(piece)
    return pieces


_CONTINUES = re.compile(r"\s*[;；,，、]+$")
"""How a list item that the list goes on after ends ("near-duplicates;", 「重複、」)."""
_CLOSERS = "」』）)\"'”’]"


def cite(sentence: str, n: int) -> str:
    """The sentence with its citation before the final stop: `…です[1]。`, `… ranking [4].`

    Quoted alone, a list item reads as a sentence: one that ends in ";" or "、" (the list goes on)
    or in nothing at all gets a full stop in its language, with the citation before it
    (`… near-duplicates [1].`, `…重複[1]。`), not after the comma ("near-duplicates; [1]").
    """
    body = _CONTINUES.sub("", sentence.rstrip())
    if body[-1:] in _STOPS:
        body, stop = body[:-1], body[-1]
    elif body.rstrip(_CLOSERS)[-1:] in _STOPS:
        stop = ""  # 「…です。」 or "… it." ends already
    else:
        stop = "。" if is_japanese(body) else "."
    space = "" if lang_of(body.rstrip(_CLOSERS + "。")[-1:]) == "ja" else " "
    return f"{body}{space}[{n}]{stop}"


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
        quoted: list[extractive.Candidate] = []
        if self.llm is None:
            text = yield from self._extractive(question, result, quoted)
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
            not_found=text.startswith(NO_ANSWER[lang_of(question)]), quoted=quoted,
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

    def _extractive(self, question: str, result: SearchResult,
                    quoted: list[extractive.Candidate]) -> Generator[str, None, str]:
        """The best few sentences of the retrieved chunks, cited, in reading order (also appended
        to `quoted`); or, when the evidence is weak for this model, "not in the documents" and why."""
        lang = lang_of(question)
        terms = extractive.question_terms(question, self._idf())
        evidence = self.evidence(result, terms)
        if result.hits and not evidence.enough:  # decided before any sentence is embedded
            text = NO_ANSWER[lang] + ("" if lang == "ja" else " ") + evidence.why_not(lang)
            yield text
            return text
        features = self.sentence_features(question, result, terms, evidence)
        chosen = extractive.choose(features.scored()) if features.candidates else []
        if not chosen:
            text = NO_ANSWER[lang]
            yield text
            return text
        quoted.extend(chosen)
        pieces = cited_pieces(chosen)
        yield from pieces
        return "".join(pieces)

    def sentence_features(
        self, question: str, result: SearchResult,
        terms: extractive.Terms | None = None, evidence: Evidence | None = None,
    ) -> SentenceFeatures:
        """Every candidate sentence of the hits with its cosine to the query (one embedding call),
        the question's terms, and the evidence for answering at all."""
        terms = terms or extractive.question_terms(question, self._idf())
        evidence = evidence or self.evidence(result, terms)
        cands = extractive.candidates(result.hits)
        cosines = np.zeros(len(cands))
        if cands:
            vectors = np.asarray(self.searcher.embeddings.embed_documents([c.text for c in cands]))
            query = np.asarray(result.query_vector)
            norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
            cosines = vectors @ query / np.where(norms == 0, 1.0, norms)
        extractive.measure(question, cands, cosines, terms)
        return SentenceFeatures(question, cands, terms, evidence)

    def evidence(self, result: SearchResult, terms: extractive.Terms | None = None) -> Evidence:
        """The evidence that the hits hold an answer: best cosine and best term coverage."""
        if terms is None:
            terms = extractive.question_terms(result.query, self._idf())
        hits = result.hits
        return Evidence(
            cosine=max((h.score for h in hits), default=0.0),
            coverage=max((terms.coverage(h.text) for h in hits), default=0.0),
            calibration=calibration_for(self.settings, self.searcher.info.model),
        )

    def _idf(self) -> Callable[[str], float]:
        from rag.retrieve import bm25

        return bm25.index_for(self.settings, self.searcher.collection).idf_of


@dataclass
class SentenceFeatures:
    question: str
    candidates: list[extractive.Candidate]
    """Measured, not yet scored."""
    terms: extractive.Terms
    evidence: Evidence

    def scored(self, weights: extractive.Weights = extractive.DEFAULT_WEIGHTS) -> list[extractive.Candidate]:
        return extractive.score(self.candidates, weights)


def _token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    top = [(str(t.get("token", "")), float(t.get("logprob", 0.0))) for t in entry.get("top_logprobs") or []]
    token, logprob = str(entry.get("token", "")), float(entry.get("logprob", 0.0))
    if not any(t == token for t, _ in top):
        top.append((token, logprob))
    top.sort(key=lambda t: -t[1])
    return TokenLogprob(token, logprob, top)


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000
