"""`rag eval --answers` and `--unanswerable`: how the app's own answers do, end to end.

`--answers` asks every question of the file through the app's `Answerer` (retrieval at the default
k, then the answer, exactly as the chat does) and reports:
  - `answer_contains`: share of questions whose answer text contains a gold answer string, after
    NFKC and whitespace normalisation (SQuAD files carry the strings; JSONL does not: null there),
  - `mean_answer_chars`: mean length of the answer text, citations included,
  - `answered`: share not answered "not found",
  - `cites_gold`: share whose citations include the gold document,
and, judging the quoted sentences one by one (extractive mode; null in LLM mode), whether the
answer is tight as well as right:
  - `lead_contains`: share whose best-scored sentence alone contains a gold string (what the answer
    would get with one sentence; `answer_contains` minus this is what the extra sentences add),
  - `sentence_precision`: share of the quoted sentences that support the answer: taken from the
    gold document or containing a gold string (a sentence from another document that does
    neither is off topic),
  - `off_topic_answers`: share of answers holding at least one such off-topic sentence.
`--unanswerable` asks the file's questions against the main collection (e.g. the dev sets'
Wikipedia questions against docs_corpus), where none has an answer, and reports `not_found`: the
share the answerer declined. Retrieval metrics live in `rag.evaluate`.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import RetrievalModeName, Settings
from rag.progress import Progress, ProgressFn

if TYPE_CHECKING:
    from rag.answer.answerer import Answer
    from rag.answer.extractive import Candidate
    from rag.evaluate import Question
    from rag.retrieve.searcher import Searcher


def normalise(text: str) -> str:
    """NFKC, lower case, and no whitespace at all (Japanese answers are compared without spaces)."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def contains_gold(answer: str, golds: Sequence[str]) -> bool:
    flat = normalise(answer)
    return any(normalise(g) and normalise(g) in flat for g in golds)


@dataclass
class AnswerStats:
    questions: int
    answered: int
    contains: int | None
    """Answers containing a gold string; None when the file has no gold strings."""
    cites_gold: int
    chars: int
    mode: str
    k: int
    lead_contains: int | None = None
    """Answers whose best sentence alone contains a gold string; None without gold strings."""
    sentences: int = 0
    """Sentences quoted in all (extractive mode)..."""
    supported: int = 0
    """...of which from the gold document or holding a gold string..."""
    off_topic: int = 0
    """...and answers holding at least one that is neither."""

    def as_dict(self) -> dict[str, Any]:
        n = max(self.questions, 1)
        return {
            "answer_mode": self.mode,
            "answer_k": self.k,
            "answer_contains": None if self.contains is None else round(self.contains / n, 4),
            "mean_answer_chars": round(self.chars / n, 1),
            "answered": round(self.answered / n, 4),
            "cites_gold": round(self.cites_gold / n, 4),
            "lead_contains": None if self.lead_contains is None else round(self.lead_contains / n, 4),
            "sentence_precision": round(self.supported / self.sentences, 4) if self.sentences else None,
            "off_topic_answers": round(self.off_topic / max(self.answered, 1), 4) if self.sentences else None,
        }


@dataclass(frozen=True)
class SentenceJudgement:
    lead_contains: bool
    supported: int
    """Quoted sentences from the gold document or holding a gold string."""
    quoted: int


def judge_sentences(quoted: Sequence[Candidate], question: Question, exact: bool) -> SentenceJudgement:
    """Whether the best-scored quoted sentence alone holds a gold string, and how many of the quoted
    sentences support the answer (see the module docstring)."""
    from rag.evaluate import same_source

    if not quoted:
        return SentenceJudgement(False, 0, 0)
    lead = max(quoted, key=lambda c: c.score)

    def supports(cand: Candidate) -> bool:
        source = cand.hit.source
        from_gold = source == question.gold if exact else same_source(source, question.gold)
        return from_gold or contains_gold(cand.text, question.answers)

    return SentenceJudgement(contains_gold(lead.text, question.answers),
                             sum(supports(c) for c in quoted), len(quoted))


def answer_all(
    settings: Settings,
    searcher: Searcher,
    questions: Sequence[Question],
    *,
    mode: RetrievalModeName | None,
    exact: bool,
    progress: ProgressFn | None = None,
) -> AnswerStats:
    """Answer every question with the app's answerer over `searcher`'s collection."""
    from rag.answer.answerer import Answerer
    from rag.evaluate import same_source

    answerer = Answerer(settings, searcher=searcher)
    has_gold = any(q.answers for q in questions)
    answered = contains = cites = chars = lead = sentences = supported = off_topic = 0
    for done, question in enumerate(questions, start=1):
        answer = answerer.answer(question.text, mode=mode)
        chars += len(answer.text)
        if not answer.not_found:
            answered += 1
            contains += contains_gold(answer.text, question.answers)
            judged = judge_sentences(answer.quoted, question, exact)
            lead += judged.lead_contains
            sentences += judged.quoted
            supported += judged.supported
            off_topic += judged.supported < judged.quoted
        cited = [h.source for h in answer.cited_hits()]
        cites += any((s == question.gold) if exact else same_source(s, question.gold) for s in cited)
        if progress and (done % 10 == 0 or done == len(questions)):
            progress(Progress("answering", done, len(questions)))
    return AnswerStats(len(questions), answered, contains if has_gold else None, cites, chars,
                       answerer.info.mode, settings.top_k, lead if has_gold else None,
                       sentences, supported, off_topic)


@dataclass
class UnanswerableReport:
    questions: int
    not_found: int
    chars: int
    collection: str
    mode: str
    examples: list[dict[str, Any]]
    """The first few questions that were answered anyway, with their answers."""

    def as_dict(self) -> dict[str, Any]:
        n = max(self.questions, 1)
        return {
            "questions": self.questions,
            "not_found": round(self.not_found / n, 4),
            "mean_answer_chars": round(self.chars / n, 1),
            "collection": self.collection,
            "mode": self.mode,
            "answered_examples": self.examples,
        }


def evaluate_unanswerable(
    path: Path,
    settings: Settings,
    *,
    mode: RetrievalModeName | None = None,
    max_questions: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> UnanswerableReport:
    """Ask the file's questions against the main collection, where none of them has an answer."""
    from rag.answer.answerer import Answerer
    from rag.errors import EmptyStoreError
    from rag.evaluate import load

    questions = load(path).questions
    if max_questions is not None and max_questions < len(questions):
        questions = random.Random(seed).sample(questions, max_questions)
    answerer = Answerer(settings)
    if answerer.searcher.count() == 0:
        raise EmptyStoreError(
            f"The collection {answerer.searcher.info.collection_name} is empty: ingest the corpus "
            "these questions are NOT about first (`rag ingest docs_corpus`)."
        )
    not_found = chars = 0
    examples: list[dict[str, Any]] = []
    for done, question in enumerate(questions, start=1):
        answer: Answer = answerer.answer(question.text, mode=mode)
        chars += len(answer.text)
        if answer.not_found:
            not_found += 1
        elif len(examples) < 5:
            examples.append({"question": question.text, "answer": answer.text})
        if progress and (done % 10 == 0 or done == len(questions)):
            progress(Progress("answering", done, len(questions)))
    return UnanswerableReport(len(questions), not_found, chars,
                              answerer.searcher.info.collection_name,
                              mode or settings.retrieval_mode, examples)

