"""Split a chunk into the sentences an extractive answer may quote, and mark those it must not.

What a quote may be: a sentence (Japanese 。！？, English . ! ? before a space), or a whole list
item; lines hard-wrapped by a PDF are joined first. What it may never be: a heading or a title-like
line, a table row, anything inside a code fence, a shell command (`rag ingest docs_corpus`,
`$ pip install …`, `RAG_TOP_K=8`), half a sentence cut at an abbreviation ("Dr. Sato", "e.g. BM25",
"3.5 GB"), or the cut-off head or tail of a chunk. A sentence that only
announces what follows (「理由は二つあります。」, "There are two reasons:") is kept but marked
`announces`, so the chooser can quote what follows in its place. Scoring lives in
`rag.answer.extractive`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_SENTENCE_CHARS = 6
STOPS = "。！？.!?"

_HEADING_MARKS = ("#", "|", "■", "□", "●", "◆", "◇", "【", "===", "---")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_MARK = re.compile(r"^\s*(?:[-*+](?=\s)|[•・]|\d+[.)．]|[（(]\d+[)）]|[①-⑳])\s*")
_SHELL = re.compile(
    r"^\s*(?:\$\s|>\s|[A-Z][A-Z0-9_]*=\S|(?:rag|pip|pip3|python|python3|make|streamlit|chroma|"
    r"git|cd|export|curl|wget|docker|apt|apt-get|sudo|npm|uv|ollama|source)\s+[-\w./~\"'=:]+)"
)
_JA_END = re.compile(r"[。！？][」』）)]*")
_EN_END = re.compile(r"[.!?][\"')\]」』*_]*(?=\s+\S)")
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr vs etc e.g eg i.e ie no nos fig figs approx cf al inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec mt u.s u.k p pp vol ch sec ed eds".split()
)
_COUNT = r"[一二三四五六七八九十0-9０-９]+\s*(?:つ|点|種類|段階|個|通り|ステップ)"
_ANNOUNCE = re.compile(
    rf"(?:(?:理由|方法|ポイント|特徴|手順|段階|種類|違い|点|こと|利点|欠点|注意点|原因|条件)は(?:主に|大きく)?{_COUNT}"
    rf"(?:あります|です|に分かれます|に分けられます)|次の(?:とおり|通り|ように|よう)(?:です|になります)?|"
    rf"以下の(?:とおり|通り|ように|よう)(?:です|になります)?)[。：:]?$"
    r"|(?:次|以下)の(?:ような|手順|方法|条件|もの|点|ステップ|段階|[一二三四五]つ)[^。]{0,30}(?:ます|です|ません)。$"
    r"|^(?:there (?:are|were) (?:two|three|four|five|several|\d+) \w+(?: \w+)?|"
    r"(?:it|this|they) (?:works|work|is done|goes) as follows|here is how|the steps are)[.:]?$"
    r"|[:：]$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sentence:
    offset: int
    """Where the sentence starts in the chunk's text."""
    text: str
    announces: bool = False
    """Only announces what follows (「理由は二つあります。」): quote what follows instead."""
    item: bool = False
    """A whole list item."""
    heading: str = ""
    """The heading or title line above it in the chunk, if any."""
    lead: bool = False
    """The first sentence under that heading (where a section usually says what it is about)."""


def split_sentences(text: str) -> list[Sentence]:
    """The quotable sentences of a chunk, in order; see the module docstring for what is left out."""
    text = text.replace(_SEP, _SEP_AS_BREAK)  # JSQuAD's `title [SEP] body`: the title is a heading
    out: list[Sentence] = []
    in_code = False
    heading, fresh = "", False
    for start, raw in _unwrapped_lines(text):
        line = raw.strip()
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code or not line or _is_command(line) or line.startswith("|"):
            continue
        if line.startswith(_HEADING_MARKS):
            heading, fresh = line.lstrip("#■□●◆◇【=- ").rstrip("】 "), True
            continue
        marker = _LIST_MARK.match(line)
        body = line[marker.end():].strip() if marker else line
        at = start + raw.find(body)
        if marker and _is_upper_title(body):  # "2. DIMENSION MISMATCH AFTER SWITCHING PROVIDERS"
            heading, fresh = body, True
            continue
        if marker and len(body) <= 240:
            if _quotable(body):
                out.append(Sentence(at, body, _announces(body), True, heading, fresh))
                fresh = False
            continue
        if _is_title(body):
            heading, fresh = body, True  # a title-like line without a full stop
            continue
        pieces = _sentences_of(body)
        for number, (offset, sentence) in enumerate(pieces):
            if at + offset == _first_char(text) and (sentence[:1].islower() or
                                                      sentence[:1] in _CONTINUING):
                continue  # the chunk starts mid-sentence (cut by the chunk overlap): ": the …"
            if number == 0 and len(pieces) > 1 and _is_label(sentence):
                heading, fresh = sentence.strip("*_ .:"), True  # "Layers. Every vector is …"
                continue
            if _quotable(sentence):
                out.append(Sentence(at + offset, sentence, _announces(sentence), False, heading, fresh))
                fresh = False
    if out and not out[-1].item and out[-1].text[-1] not in STOPS + ":：" and \
            text.rstrip().endswith(out[-1].text):
        out.pop()  # the chunk ends mid-sentence
    return out


_CONTINUING = ":;,)]}、。，：；）」』"
"""A chunk whose text starts with one of these was cut inside a sentence."""
_SENTENCE_INSIDE = re.compile(r"[。！？]")
WRAP_CJK_CHARS = 30
WRAP_LATIN_CHARS = 60
"""A line this long that ends without a stop is a wrapped line (PDF text), not a title."""
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _unwrapped_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) with hard-wrapped lines joined: PDF text breaks sentences mid-line
    (「後から変」 / 「更できません。」). A line is joined to the next when it is long, ends without a
    stop or colon, and the next line is plain text (not blank, a heading, a list item or code)."""
    lines: list[tuple[int, str]] = []
    pos = 0
    for raw in text.splitlines(keepends=True):
        lines.append((pos, raw))
        pos += len(raw)
    out: list[tuple[int, str]] = []
    in_code = False
    for start, raw in lines:
        line = raw.strip()
        if _FENCE.match(line):
            in_code = not in_code
        if out and not in_code and _continues(out[-1][1], line):
            prev_start, prev = out[-1]
            glue = "" if _CJK_CHAR.match(line) and _CJK_CHAR.search(prev.rstrip()[-1:]) else " "
            out[-1] = (prev_start, prev.rstrip() + glue + line + "\n")
            continue
        out.append((start, raw))
    return out


def _continues(prev: str, line: str) -> bool:
    prev = prev.strip()
    if not prev or not line or prev[-1] in STOPS + ":：" or _FENCE.match(prev) or _FENCE.match(line):
        return False
    if line.startswith(_HEADING_MARKS) or _LIST_MARK.match(line) or _is_command(line):
        return False
    if prev.startswith(_HEADING_MARKS) or _is_command(prev):
        return False
    cjk = bool(_CJK_CHAR.search(prev))
    return len(prev) >= (WRAP_CJK_CHARS if cjk else WRAP_LATIN_CHARS)


def _is_title(line: str) -> bool:
    """A line without a stop, shorter than a wrapped line would be: a title or a label."""
    if line[-1] in STOPS + ":：" or _SENTENCE_INSIDE.search(line):
        return False
    return len(line) < (WRAP_CJK_CHARS if _CJK_CHAR.search(line) else WRAP_LATIN_CHARS)


_LABEL = re.compile(r"^[*_]*[A-Z][\w-]*(?: [\w()-]+){0,2}[.:][*_]*$")


def _is_upper_title(line: str) -> bool:
    """A numbered section title in capitals, as plain-text manuals write them: no lower-case
    letter, no final stop, at least two words."""
    return (line[-1] not in STOPS and not any(ch.islower() for ch in line)
            and sum(ch.isupper() for ch in line) >= 6 and len(line.split()) >= 2)


def _is_label(sentence: str) -> bool:
    """A run-in label that opens a paragraph or list item ("Layers.", "**Dot product.**"): up to
    three words and a stop, followed on the line by the sentences it labels."""
    return bool(_LABEL.match(sentence)) and len(sentence) <= 40


def _first_char(text: str) -> int:
    return len(text) - len(text.lstrip())
_SEP = " [SEP] "
_SEP_AS_BREAK = " " * (len(_SEP) - 1) + "\n"


_ALWAYS_SHELL = re.compile(r"^\s*(?:\$\s|>\s|[A-Z][A-Z0-9_]*=\S)")


def _is_command(line: str) -> bool:
    """A shell line: `$ …`, `VAR=…`, or a command word with arguments that does not read as prose
    (prose that merely starts with one, "rag search shows what it finds, …", has commas or a stop)."""
    line = line.strip()
    prose = line[-1:] in STOPS or ", " in line or "、" in line
    return bool(_ALWAYS_SHELL.match(line) or (_SHELL.match(line) and not prose))


def _quotable(sentence: str) -> bool:
    """Long enough, not a command, and not a bare label: a Latin-script "sentence" of one or two
    words ("Layers.", left alone at a chunk's edge) says nothing on its own."""
    if _CJK_CHAR.search(sentence) is None and len(sentence.split()) < 3:
        return False
    return len(sentence) >= MIN_SENTENCE_CHARS and not _is_command(sentence)


def _announces(sentence: str) -> bool:
    return bool(_ANNOUNCE.search(sentence.strip()))


def _sentences_of(line: str) -> list[tuple[int, str]]:
    """(offset, sentence) within one line: split after 。！？ and after . ! ? unless it ends an
    abbreviation, an initial ("J. K. Rowling") or a number, or stands inside `inline code`."""
    cuts = {m.end() for m in _JA_END.finditer(line)}
    for m in _EN_END.finditer(line):
        if not _is_abbreviation(line, m.start()) and line.count("`", 0, m.start()) % 2 == 0:
            cuts.add(m.end())
    out: list[tuple[int, str]] = []
    start = 0
    for cut in [*sorted(cuts), len(line)]:
        piece = line[start:cut]
        stripped = piece.strip()
        if stripped:
            out.append((start + piece.find(stripped), stripped))
        start = cut
    return out


def _is_abbreviation(line: str, stop: int) -> bool:
    """Whether the stop at `stop` ends an abbreviation rather than a sentence."""
    if line[stop] != ".":
        return False
    word = re.search(r"([\w.]+)$", line[:stop])
    if not word:
        return False
    token = word.group(1).lower()
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()) or token.rstrip(".") in _ABBREVIATIONS
