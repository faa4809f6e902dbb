"""Document text is data, never markup: text as Streamlit shows it, letter for letter.

`st.markdown` would turn a document's `[公式の再設定ページ](https://evil.example/phish-ja)` into a link
whose text hides its URL, and `![](https://evil.example/beacon.png)` into an image the browser
fetches (a tracking beacon, offline or not); Streamlit's own `:red[...]` directives, `$...$` math
and bare URLs would go live too. `literal_markdown` escapes every ASCII punctuation mark, so the
text reads exactly as written, except the `[n]` citations answers are made of, and shows URLs as
code (a link shows its real URL, which cannot be clicked, and nothing is fetched); `literal_line`
is the same on one line, for a name or a sentence set inside a Markdown line (a bold header, a
caption). `code_span` shows a name (a file, a model) verbatim.
Every place the app shows retrieved text, answers, or questions goes through one of these (or
`st.text`, which never interprets anything).
"""

from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d{1,3})\]")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINKABLE = re.compile(
    r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"'`()\[\]{}]+"  # what GFM autolinks, any scheme
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
)


def literal_markdown(text: str) -> str:
    """Markdown that renders as `text` itself: no links, images, HTML, math or directives.

    URLs and e-mail addresses become code spans: Streamlit's Markdown links any "https://…",
    "www.…" or address it finds in the text, escaped or not, so they are shown as code, whole
    and readable, and cannot be clicked. Line breaks are kept as hard breaks.
    """
    text = text.replace("\r\n", "\n")
    parts: list[str] = []
    cursor = 0
    for match in _LINKABLE.finditer(text):
        if match.start() < cursor:
            continue
        linkable = match.group(0).rstrip(".,;:!?")  # a sentence's full stop is not the URL's
        parts.append(_escaped(text[cursor : match.start()]))
        parts.append(code_span(linkable))
        cursor = match.start() + len(linkable)
    parts.append(_escaped(text[cursor:]))
    return "".join(parts).replace("\n", "  \n")


def literal_line(text: str) -> str:
    """`literal_markdown` with every run of whitespace one space: a source name, heading or
    sentence placed inside a Markdown line that a line break would end."""
    return literal_markdown(" ".join(text.split()))


def _escaped(text: str) -> str:
    """Every ASCII punctuation mark backslash-escaped, except in `[n]` citations."""
    out: list[str] = []
    cursor = 0
    for match in _CITATION.finditer(text):
        out.append(_PUNCTUATION.sub(r"\\\1", text[cursor : match.start()]))
        out.append(match.group(0))
        cursor = match.end()
    out.append(_PUNCTUATION.sub(r"\\\1", text[cursor:]))
    return "".join(out)


def code_span(text: str) -> str:
    """`text` as an inline code span (shown verbatim), fenced longer than any backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    one_line = " ".join(text.splitlines())
    return f"{fence} {one_line} {fence}" if longest else f"{fence}{one_line}{fence}"
