"""BM25's terms: NFKC-normalised, lower-cased words, and character bigrams over Japanese runs.

Japanese has no spaces, and bigrams beat a morphological analyzer on JSQuAD (see README).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_CJK = "\u3005\u3006\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(r"[^\W_]+")
_SPLIT = re.compile(f"[{_CJK}]+|[^{_CJK}]+")
_IS_CJK = re.compile(f"[{_CJK}]")
_KANJI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_CJK = re.compile(f"[^{_CJK}]+")

Tokenizer = Callable[[str], list[str]]


def tokenize(text: str) -> list[str]:
    """Terms of `text`: words, plus character bigrams over every run that holds kanji or kana.

    A run is a stretch of letters and digits between spaces and punctuation. Bigrams span the
    whole run, digits and Latin letters included ("5月", "gpt-4oの" -> "4o", "oの"), which JSQuAD
    rewards; the Latin words inside such a run are kept too, so "bm25とは" also matches "bm25".
    Each kanji is also a term on its own, so a one-kanji query ("猫") matches, which also lifts
    JSQuAD's MRR@10 from 0.934 to 0.940 (all 4,442 questions).
    """
    if not unicodedata.is_normalized("NFKC", text):  # the check costs 1/50 of normalizing
        text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for run in _RUN.findall(text.lower()):
        if not _IS_CJK.search(run):
            out.append(run)
            continue
        if len(run) > 1:
            out += [run[i : i + 2] for i in range(len(run) - 1)]
        out += _KANJI.findall(run)
        if len(run) == 1 and not _KANJI.match(run):
            out.append(run)
        out += _NOT_CJK.findall(run)
    return out
