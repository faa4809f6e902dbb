"""Choose the sentences of the retrieved chunks that answer a question, by three kinds of evidence.

Each quotable sentence (`rag.answer.sentences`) of the top hits is scored on
  - the retrieval model's question -> passage similarity (the sentence embedded as a passage,
    min-max scaled within the question's candidates, since each model has its own cosine range),
  - its lexical overlap with the question: the IDF-weighted share of the question's content terms
    (BM25's terms, question words left out) that the sentence contains,
  - the rank of its chunk (the retriever already weighed the whole chunk),
plus a small preference for sentences in the question's language, and a bonus when the question
asks for a reason, a drawback, a difference, a way or a situation and the sentence carries a marker
of that kind of answer (`rag.answer.focus`): overlap alone quotes what HNSW *is* to "what does
HNSW trade off?". Weights were tuned end to end on the JSQuAD and XQuAD dev sets, docs_corpus/qa.jsonl
and the focus questions of docs_corpus/qa_focus.jsonl (`bench/answer_chooser.py`; figures in the
README). A sentence that only announces what follows passes its score to the sentences it
announces and is never quoted. Further sentences must stay closer to the best one the farther they
come from its chunk (`_margin`), so an answer does not end on an off-topic sentence of another
document. Whether to answer at all is decided in `rag.answer.evidence`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.answer.focus import focus_of, follows_from_before, has_marker
from rag.answer.markup import shown
from rag.answer.sentences import Sentence, split_sentences
from rag.lang import is_japanese, lang_of
from rag.retrieve.bm25 import tokenize
from rag.retrieve.searcher import Hit

MAX_SENTENCES = 3


@dataclass(frozen=True)
class Weights:
    cosine: float = 0.25
    overlap: float = 1.0
    heading: float = 0.3
    """Times the overlap of the sentence's heading (or JSQuAD title) with the question."""
    lead: float = 0.1
    """Added for the first sentence under a heading."""
    rank: float = 0.02
    """Per step down the ranking, subtracted."""
    language: float = 0.1
    """Added when the sentence is in the question's language."""
    keep: float = 1.0
    """Further sentences are quoted while within this of the best score..."""
    budget: int = 300
    """...and while the answer stays within this many characters."""
    keep_other: float = 0.5
    """A sentence from another chunk of the best one's document must be within this of the best;
    from another document, within `keep_above` when the retriever ranked its chunk above the
    best one's (then it is as often the answer the best sentence missed), else within `keep_far`
    (such a sentence is most often off topic)."""
    keep_above: float = 0.25
    keep_far: float = 0.1
    focus: float = 0.2
    """Added when the question asks for a reason, a drawback, a difference, a way or a time
    (なぜ, 欠点, 違い, how do I, when) and the sentence carries a marker of that kind of answer
    (ため, 一方, but, because, instead, if)."""


DEFAULT_WEIGHTS = Weights()

_HIRAGANA_ONLY = re.compile(r"^[\u3040-\u309f]+$")
_QUESTION_WORDS = frozenset(
    "a an the of to in on at for by with from and or is are was were be been being do does did "
    "what which who whom whose when where why how that this these those it its as into about "
    "can could would should will shall may might must there their they he she his her you your "
    "we our i me my not no than then so if 何 誰 どこ いつ なぜ どう".split()
)


@dataclass
class Candidate:
    hit: Hit
    sentence: Sentence
    cosine: float = 0.0
    overlap: float = 0.0
    score: float = 0.0
    heading_overlap: float = 0.0
    same_language: bool = True
    position: int = 0
    """Index among the quotable sentences of its chunk."""
    focus: bool = False
    """Carries a marker of the kind of answer the question asks for (`rag.answer.focus`)."""
    consequence: bool = False
    """Asked why, it says what follows from the sentence before it (そのため…, "… therefore …")."""

    @property
    def heading(self) -> str:
        """The heading above the sentence in its chunk, else the chunk's own heading path."""
        return self.sentence.heading or str(self.hit.metadata.get("heading") or "")

    @property
    def text(self) -> str:
        """The sentence as written in the chunk: what is scored, embedded and matched."""
        return self.sentence.text

    @property
    def shown(self) -> str:
        """The sentence as a reader of the document sees it: what the answer quotes."""
        return shown(self.sentence.text)


@dataclass
class Terms:
    """The question's content terms with their IDF in the searched collection, grouped by the word
    (a run of one script: エンベディング, 分割, bm25) they come from."""

    groups: list[dict[str, float]] = field(default_factory=list)

    @property
    def idf(self) -> dict[str, float]:
        return {t: w for group in self.groups for t, w in group.items()}

    @property
    def total(self) -> float:
        return sum(sum(g.values()) for g in self.groups)

    def coverage(self, text: str) -> float:
        """How much of the question `text` holds, 0-1: each word counts by its IDF, times the
        square of the share of its terms found, so a word found whole counts fully and a few
        shared bigrams (グラウンディング for エンベディング: ディ, ィン, ング) count little."""
        total = self.total
        if not total:
            return 0.0
        present = set(tokenize(text))
        got = 0.0
        for group in self.groups:
            weight = sum(group.values())
            found = sum(w for t, w in group.items() if t in present)
            got += found * found / weight if weight else 0.0
        return got / total


IdfLookup = Callable[[str], float]

_WORD = re.compile(
    r"[\u30a0-\u30ff]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006]+|[\u3040-\u309f]+"
    r"|[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006]+"
)


def question_terms(question: str, idf: IdfLookup) -> Terms:
    """The question's words (runs of one script) as groups of BM25 terms, leaving out question
    words (what, 何) and kana-only runs (です, とは), which say how it is asked, not what about.
    All terms, as one group each, when nothing else is left ("です か")."""
    groups: list[dict[str, float]] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", question).lower()):
        if word in _QUESTION_WORDS or _HIRAGANA_ONLY.match(word):
            continue
        terms = sorted(set(tokenize(word)) - _QUESTION_WORDS)
        if terms:
            groups.append({t: idf(t) for t in terms})
    if not groups:
        groups = [{t: idf(t)} for t in sorted(set(tokenize(question)))]
    return Terms(groups)


def candidates(hits: Sequence[Hit]) -> list[Candidate]:
    """Every quotable sentence of the hits, best hit first; a sentence repeated by chunk overlap
    is kept once, under the better-ranked chunk."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for hit in hits:
        for position, sentence in enumerate(split_sentences(hit.text)):
            key = " ".join(sentence.text.split())
            if key not in seen:
                seen.add(key)
                out.append(Candidate(hit, sentence, position=position))
    return out


def measure(question: str, cands: list[Candidate], cosines: np.ndarray, terms: Terms) -> None:
    """Fill each candidate's evidence once: cosine, overlap, heading overlap, language, focus."""
    question_ja = lang_of(question) == "ja"
    kinds = focus_of(question)
    for cand, cos in zip(cands, cosines, strict=True):
        cand.cosine = float(cos)
        cand.overlap = terms.coverage(cand.text)
        cand.heading_overlap = terms.coverage(cand.heading) if cand.heading else 0.0
        cand.same_language = is_japanese(cand.text) == question_ja
        cand.focus = bool(kinds) and has_marker(cand.text, kinds)
        cand.consequence = "reason" in kinds and follows_from_before(cand.text)


def score(cands: list[Candidate], weights: Weights = DEFAULT_WEIGHTS) -> list[Candidate]:
    """Combine the measured evidence into each candidate's score (in place; returns `cands`).

    The cosine is min-max scaled within the question's candidates: each model has its own range.
    """
    if not cands:
        return cands
    low = min(c.cosine for c in cands)
    spread = max(c.cosine for c in cands) - low
    for cand in cands:
        scaled = (cand.cosine - low) / spread if spread > 1e-9 else 1.0
        cand.score = (weights.cosine * scaled + weights.overlap * cand.overlap
                      + weights.heading * cand.heading_overlap + weights.lead * cand.sentence.lead
                      - weights.rank * (cand.hit.rank - 1) + weights.language * cand.same_language
                      + weights.focus * cand.focus)
    _pass_back_consequences(cands)
    _pass_on_announcements(cands)
    return cands


def _pass_back_consequences(cands: list[Candidate]) -> None:
    """A sentence that states a consequence, to a why-question, lends its score to the sentence
    just before it in its chunk, the reason it follows from, and stays a candidate itself: asked
    "why does X happen?", 「そのため、…X が起きやすくなります。」 matches X, the sentence before says why."""
    for i, cand in enumerate(cands):
        if not cand.consequence or cand.position == 0:
            continue
        before = next((c for c in reversed(cands[:i]) if c.hit is cand.hit), None)
        if before is not None and before.position == cand.position - 1:
            before.score = max(before.score, cand.score)


def _pass_on_announcements(cands: list[Candidate]) -> None:
    """An announcing sentence gives its score to the sentences it announces (the next ones of
    its chunk: as many as it counts, else two), and drops out."""
    for i, cand in enumerate(cands):
        if not cand.sentence.announces:
            continue
        following = [c for c in cands[i + 1 :] if c.hit is cand.hit][: _announced_count(cand.text)]
        for follower in following:
            follower.score = max(follower.score, cand.score)
        cand.score = -math.inf


_KANJI_NUMBERS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_EN_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5}


def _announced_count(text: str) -> int:
    for word, n in {**_KANJI_NUMBERS, **_EN_NUMBERS}.items():
        if word in text.lower():
            return min(n, MAX_SENTENCES)
    digits = re.search(r"[0-9０-９]", text)
    return min(int(digits.group()), MAX_SENTENCES) if digits and digits.group().isdigit() else 2


def _margin(hit: Hit, best: Hit, weights: Weights) -> float:
    """How far below the best score a sentence of `hit` may be and still be quoted beside it."""
    if hit is best:
        return weights.keep
    if hit.source == best.source:
        return weights.keep_other
    return weights.keep_above if hit.rank < best.rank else weights.keep_far


def choose(cands: list[Candidate], weights: Weights = DEFAULT_WEIGHTS) -> list[Candidate]:
    """The best sentence and up to two more within `weights.keep` of it and the length budget,
    in reading order
    (by the rank of the chunk's document, then position in it)."""
    ranked = sorted((c for c in cands if c.score > -math.inf), key=lambda c: -c.score)
    if not ranked:
        return []
    best = ranked[0].score
    chosen = ranked[:1]
    length = len(ranked[0].text)
    for cand in ranked[1:]:
        if len(chosen) == MAX_SENTENCES or cand.score < best - weights.keep:
            break
        if cand.score < best - _margin(cand.hit, ranked[0].hit, weights):
            continue
        if length + len(cand.text) <= weights.budget:
            chosen.append(cand)
            length += len(cand.text)
    first_rank: dict[str, int] = {}
    for cand in cands:
        first_rank.setdefault(cand.hit.source, cand.hit.rank)
    return sorted(chosen, key=lambda c: (first_rank[c.hit.source],
                                         int(c.hit.metadata.get("start", 0)) + c.sentence.offset))
