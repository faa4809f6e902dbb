"""A cited chunk in its document: the document's text, the chunk's span, a sentence inside it,
and for a PDF the page rendered as an image.

The document is read again from the file the chunk came from (`path` in its metadata) with the
same loader ingest used, so offsets (`start`) mean the same thing: for a PDF the page's
extracted text, for HTML the visible text, otherwise the decoded file. If the file is gone or has
changed so that the chunk is no longer in it, the stored chunk is shown alone and the view says
why. Rendering the page as an image (pypdfium2) sits beside the extracted text so a garbled
extraction is visible at a glance. Layout lives in `rag.ui.citations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import LoadError

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit

CONTEXT_CHARS = 4000
"""Characters of the document shown on each side of the chunk (a long file is cut, not the chunk)."""


@dataclass(frozen=True)
class SourceDoc:
    source: str
    page: int | None
    text: str
    """The document (or PDF page) text, possibly cut to `CONTEXT_CHARS` around the chunk."""
    offset: int
    """Where `text` starts in the whole document (0 unless cut)."""
    chunk: tuple[int, int]
    """The chunk's span in `text`."""
    sentence: tuple[int, int] | None
    """The supporting sentence's span in `text`, inside the chunk."""
    origin: str
    """`file` (read again from the file) or `chunk` (the file could not be used: see `note`)."""
    note: str
    path: Path | None
    is_pdf: bool


def _document_text(path: Path, page: int | None) -> str:
    from rag.ingest.loaders import FoundFile, decode_text, load

    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        docs = load(FoundFile(path, path.parent), data)
        for doc in docs:
            if doc.metadata.get("page") == page:
                return doc.page_content
        raise LoadError(f"page {page} has no text any more")
    if suffix in {".html", ".htm"}:
        return load(FoundFile(path, path.parent), data)[0].page_content
    return decode_text(data)[0]


def _locate(text: str, chunk: str, start: int) -> int | None:
    if text[start : start + len(chunk)] == chunk:
        return start
    found = [i for i in (text.find(chunk), text.find(chunk[:64])) if i >= 0]
    return min(found, key=lambda i: abs(i - start)) if found else None


def open_source(hit: Hit, sentence: tuple[int, int] | None = None) -> SourceDoc:
    """The document of `hit` with the chunk located; `sentence` is a span within the chunk."""
    raw_path = hit.metadata.get("path")
    path = Path(str(raw_path)) if raw_path else None
    is_pdf = bool(path and path.suffix.lower() == ".pdf")
    start = int(hit.metadata.get("start", 0) or 0)
    note = ""
    text: str | None = None
    if path is None:
        note = "no file path was recorded for this chunk"
    elif not path.is_file():
        note = f"the file is no longer at {path}"
    else:
        try:
            text = _document_text(path, hit.page)
        except (OSError, LoadError) as exc:
            note = f"the file could not be read again ({exc})"
    at = _locate(text, hit.text, start) if text is not None else None
    if text is not None and at is None:
        note = "the file has changed since it was ingested (the chunk is no longer in it)"
    if text is None or at is None:
        span = sentence
        return SourceDoc(hit.source, hit.page, hit.text, 0, (0, len(hit.text)), span, "chunk",
                         note + "; showing the stored chunk", path, is_pdf)
    end = at + len(hit.text)
    if text[at:end] != hit.text:  # anchored on the first characters only
        end = min(len(text), at + len(hit.text))
    cut_from = max(0, at - CONTEXT_CHARS)
    cut_to = min(len(text), end + CONTEXT_CHARS)
    shown = text[cut_from:cut_to]
    span = (at - cut_from, end - cut_from)
    sent = (span[0] + sentence[0], span[0] + sentence[1]) if sentence else None
    return SourceDoc(hit.source, hit.page, shown, cut_from, span, sent, "file", note, path, is_pdf)


def render_page(path: Path, page: int, *, width: int = 900) -> bytes:
    """PDF page `page` (1-based) as PNG bytes, `width` pixels wide."""
    import io

    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise LoadError(f"{path.name} has {len(pdf)} pages, not {page}")
        pdf_page = pdf[page - 1]
        scale = width / max(pdf_page.get_width(), 1.0)
        image = pdf_page.render(scale=scale).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        pdf.close()
