"""The keyword side of "Why this hit": which question terms BM25 matched, and what each added.

A hit's BM25 score is a sum over the question's terms of `query count × idf × tf-part`, where the
tf-part is the saturated, length-normalised count `tf·(k1+1) / (tf + k1·(1−b+b·len/avgdl))`. This
module reads those numbers back from the very index that scored the hit (so the parts add up to
the score shown), and finds where each matched term sits in the chunk's original text so the UI
can highlight it. The vector side is `rag.lens.why`; the fusion arithmetic is `rag.retrieve.fusion`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.retrieve.bm25 import BM25Index
    from rag.retrieve.hits import Hit


@dataclass(frozen=True)
class TermMatch:
    """One question term found in a chunk, with its share of the chunk's BM25 score."""

    term: str
    query_count: int
    tf: int
    """Occurrences of the term in the chunk (after the same tokenization BM25 uses)."""
    idf: float
    tf_part: float
    """tf·(k1+1) / (tf + k1·(1−b+b·len/avgdl)): the count after saturation and length norm."""
    contribution: float
    """query_count × idf × tf_part: what this term adds to the chunk's BM25 score."""

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def matched_terms(index: BM25Index, query: str, hit: Hit) -> list[TermMatch]:
    """The question's terms present in `hit`'s chunk, largest contribution first.

    Empty when the chunk is not in the index (deleted since) or shares no term with the question.
    """
    row = index.rows.get(hit.id)
    if row is None:
        return []
    query_terms = Counter(index.tokenizer(query))
    chunk_terms = Counter(index.tokenizer(hit.text))
    out = []
    for term, qtf in query_terms.items():
        idf, weight = index.explain(row, term)
        if weight <= 0:
            continue
        out.append(TermMatch(term, qtf, chunk_terms.get(term, 0), idf,
                             weight / idf if idf else 0.0, qtf * weight))
    out.sort(key=lambda m: (-m.contribution, m.term))
    return out


_ALNUM = re.compile("[a-z0-9]")


def _normalised(text: str) -> tuple[str, list[int]]:
    """`text` as BM25 sees it (NFKC, lower case), and for each of its characters the original index."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch).lower():
            chars.append(out)
            origin.append(i)
    return "".join(chars), origin


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where `terms` occur in `text`, as merged (start, end) spans of the original characters.

    Japanese terms (character bigrams, single kanji) match anywhere; Latin words and numbers match
    as whole words ("bm25" in "BM25とは" but not in "bm25x"), as BM25 counted them.
    """
    if not terms or not text:
        return []
    norm, origin = _normalised(text)
    marks = [False] * len(text)
    for term in set(terms):
        starts = [m.start() for m in re.finditer(f"(?={re.escape(term)})", norm)]
        if term.isascii():  # a whole word, unless BM25 took it from inside a Japanese run
            whole = [i for i in starts if not _ALNUM.match(norm[i - 1 : i])
                     and not _ALNUM.match(norm[i + len(term) : i + len(term) + 1])]
            starts = whole or starts
        for start in starts:
            for j in range(start, min(start + len(term), len(norm))):
                marks[origin[j]] = True
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(marks):
        if marks[i]:
            j = i
            while j < len(marks) and marks[j]:
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    return spans
