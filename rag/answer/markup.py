"""A quoted sentence as a reader of its document sees it: inline Markdown emphasis and link syntax
removed, their text kept (and a link's address, when it leads out of the document).

The sentences an extractive answer quotes come from the chunks' raw text, where a Markdown document
still says `**fetch_k** is the size…` or `see [the guide](https://…)`. The answer is shown as
literal text (`rag.ui.safe_text`, and `rag ask` prints it as is), so those markers would reach the
user as stray asterisks and brackets. Only the *shown* quote is cleaned: the chooser scores, embeds
and matches the raw sentence, so nothing it measures changes.

Inline code keeps its backticks: the answer is never rendered as Markdown, and the backticks are
what tells the reader that `rag ingest` or `a1*b1` is a name or a formula, written as is. Markers
inside a code span are left alone, and so is anything that only looks like emphasis: an asterisk
with a space beside it (`2 * 3`), or underscores inside a word (`ef_search`, `lambda_mult`). A backslash-escaped mark (`\\*`)
shows as the mark.
"""

from __future__ import annotations

import re

_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\](?:\(([^)\s]*)(?:\s+\"[^\"]*\")?\)|\[[^\]\n]*\])")
_ABSOLUTE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_HELD = re.compile("\ue000(\\d+)\ue001")
_AUTOLINK = re.compile(r"<((?:[a-zA-Z][a-zA-Z0-9+.-]*:|mailto:)[^\s<>]+)>")
# Emphasis opens and closes with no space just inside the markers (CommonMark's flanking rule,
# simplified): `**a**`, `__a__`, `~~a~~`, `*a*`, `_a_`. Underscores never mark emphasis inside a
# word (`ef_search`); asterisks may touch Japanese text (`の**強調**です`) but not an ASCII letter
# or digit, so `2*3` outside code stays as written.
_OUTSIDE = {r"\*": r"A-Za-z0-9*", "_": r"\w_", "~": r"\w~"}
_EMPHASIS = [
    re.compile(rf"(?<![{_OUTSIDE[m]}\\]){m}{{{n}}}(?=[^\s{m}])(.+?)(?<=[^\s{m}\\]){m}{{{n}}}"
               rf"(?![{_OUTSIDE[m]}])")
    for n, m in ((3, r"\*"), (3, "_"), (2, r"\*"), (2, "_"), (2, "~"), (1, r"\*"), (1, "_"))
]


def shown(text: str) -> str:
    """`text` with inline Markdown emphasis, links and images reduced to their text; code spans
    (backticks included) kept verbatim, even inside emphasis (`**Start with `pca`.**`)."""
    spans: list[str] = []

    def hold(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\ue000{len(spans) - 1}\ue001"

    text = _plain(_CODE_SPAN.sub(hold, text))
    return _HELD.sub(lambda m: spans[int(m.group(1))], text)


def _link(match: re.Match[str]) -> str:
    """A link's text, and its address when it leaves the document (`text (https://…)`): the quote
    is not a link, and a reader deciding whether to trust `公式の再設定ページ` needs to see where it
    points, which the rendered document would show only on hover."""
    text, target = match.group(1), match.group(2) or ""
    return f"{text} ({target})" if _ABSOLUTE.match(target) else text


def _plain(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    for pattern in _EMPHASIS:  # outer markers first: `**a *b* c**`
        text = pattern.sub(r"\1", text)
    return _ESCAPED.sub(r"\1", text)
