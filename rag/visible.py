"""Whether a text has anything a person can see: invisible text is empty text.

`str.strip()` only removes whitespace; zero-width spaces, joiners, byte-order marks, soft hyphens,
bidi controls, variation selectors, combining marks without a base, Hangul fillers and the blank
Braille pattern pass it, and a file of nothing else would otherwise become hundreds of invisible
chunks whose vectors crowd real hits out of every result. Used by the loaders, the chunker and the
searcher (an invisible question is an empty question).
"""

from __future__ import annotations

import unicodedata

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")
"""Default-ignorable or blank code points whose category says they are letters or symbols."""


def is_visible(ch: str) -> bool:
    """One character that draws something (letters, digits, punctuation, symbols, emoji)."""
    return ch not in _INVISIBLE_LETTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES


def has_visible_text(text: str) -> bool:
    """At least one visible character; stops at the first, so ordinary text costs one lookup."""
    return any(is_visible(ch) for ch in text)
