"""Does extracted Japanese look garbled? Per page, with the reason, so a person can fix the source.

PDFs whose fonts lack a Unicode map extract as `(cid:1234)` runs or private-use characters; some
producers emit Kangxi radicals or CJK compatibility ideographs (⽇ for 日) that look right but match
nothing in a search; broken bytes become U+FFFD; a scanned page has no text layer at all. Each is
found here and reported by `rag ingest` and on the Documents page; the text is still ingested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.documents import Document

_CID = re.compile(r"\(cid:\d+\)")
_COMPAT = re.compile(r"[\u2e80-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")
"""CJK radicals supplement, Kangxi radicals, CJK compatibility ideographs (and supplement)."""
_PRIVATE = re.compile(r"[\ue000-\uf8ff\U000f0000-\U0010fffd]")
MIN_COUNT = 3
"""One � or ⺟ can be meant (a page about encodings shows one); three in a page is a problem.
The bundled corpus has exactly one such page, and no page with three."""


@dataclass(frozen=True)
class Flag:
    page: int | None
    reason: str

    def __str__(self) -> str:
        return f"page {self.page}: {self.reason}" if self.page is not None else self.reason


def text_flags(text: str) -> list[str]:
    """Reasons this text looks garbled, empty when it looks fine."""
    reasons = []
    if (n := text.count("\ufffd")) >= MIN_COUNT:
        reasons.append(f"{n} replacement characters (U+FFFD): bytes that were not valid text")
    if (n := len(_CID.findall(text))) >= MIN_COUNT:
        reasons.append(f"{n} (cid:…) glyph codes: the PDF font has no Unicode map")
    if (n := len(_COMPAT.findall(text))) >= MIN_COUNT:
        reasons.append(f"{n} CJK radical/compatibility characters (e.g. ⽇ for 日): searches will miss them")
    if (n := len(_PRIVATE.findall(text))) >= MIN_COUNT:
        reasons.append(f"{n} private-use characters: the font's glyphs have no standard code")
    return reasons


def check(docs: Sequence[Document], *, text_layer: bool = False) -> list[Flag]:
    """Flags for a file's loaded pages (or sections); marks each flagged Document's metadata.

    With `text_layer` (PDFs), pages missing from `docs` had no text: they are flagged too, with
    the OCR fix when Tesseract is not available here.
    """
    flags: list[Flag] = []
    seen_pages: set[int] = set()
    total = 0
    for doc in docs:
        page = doc.metadata.get("page")
        if page is not None:
            seen_pages.add(int(page))
        total = max(total, int(doc.metadata.get("pages", 0) or 0))
        reasons = text_flags(doc.page_content)
        if reasons:
            doc.metadata["garbled"] = "; ".join(reasons)
            flags.extend(Flag(int(page) if page is not None else None, r) for r in reasons)
    if text_layer:
        from rag.ingest.formats import ocr

        found = ocr.status()
        why = "OCR found no text either" if found.available else ocr.INSTALL_FIX
        flags.extend(Flag(page, f"no text layer (scanned image?); {why}")
                     for page in range(1, total + 1) if page not in seen_pages)
    return sorted(flags, key=lambda f: (f.page or 0, f.reason))
