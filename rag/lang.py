"""Which language a text is in, the two ways the product needs to ask.

`lang_of` picks the language to talk back in (any kana or kanji means Japanese, as a user who
types one kanji expects, and so does `？` with no Latin letter); `is_japanese` asks whether a text is mostly Japanese, which is what
decides whether BM25 can match it at all. Both use one character class (kana and the main kanji
blocks); the BM25 tokenizer and the encoding detector keep wider classes of their own, for what
they need beyond "is this Japanese" (iteration marks and compatibility ideographs; CJK punctuation
and full-width forms).
"""

from __future__ import annotations

import re
from typing import Literal

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_JA_KEYBOARD = re.compile(r"[\u3000-\u303f\uff01-\uffef]")  # 、。「」 and ？！ｋ (full-width forms)


def lang_of(text: str) -> Literal["ja", "en"]:
    """Japanese when the text has any kana or kanji, or no Latin letter but a Japanese keyboard's
    punctuation or full-width forms: `？？？` typed on a Japanese keyboard wants a Japanese reply."""
    if _JAPANESE.search(text):
        return "ja"
    return "ja" if _JA_KEYBOARD.search(text) and not _LATIN.search(text) else "en"


def is_japanese(text: str) -> bool:
    """Kana and kanji make up a tenth of the letters or more.

    Low enough that "Oncorhynchus ketaを日本語で？" is Japanese, high enough that an English page
    quoting 我輩は猫である stays English.
    """
    head = text[:300]
    japanese = len(_JAPANESE.findall(head))
    latin = len(_LATIN.findall(head))
    return japanese > 0 and japanese / (japanese + latin) >= 0.1
