"""Word .docx through python-docx: paragraphs and tables in document order, split at headings.

Each heading starts a section carrying its heading path ("概要 > 手順"), like Markdown files; a
table becomes its rows with their header, in place. Headings are recognised by their built-in
style ("Heading 1", "Title"), which Word keeps in English whatever the display language.
"""

from __future__ import annotations

import io
import re
import zipfile

from langchain_core.documents import Document

from rag.errors import LoadError
from rag.ingest.formats.table import rows_as_text

_HEADING = re.compile(r"^(?:heading|見出し)\s*(\d)$", re.IGNORECASE)


def _level(style_name: str) -> int:
    """1-9 for a heading style, 1 for the title, 0 for body text."""
    if style_name.strip().lower() == "title":
        return 1
    match = _HEADING.match(style_name.strip())
    return int(match.group(1)) if match else 0


def load_docx(data: bytes) -> list[Document]:
    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        doc = open_docx(io.BytesIO(data))
        blocks = list(doc.iter_inner_content())
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(
            f"corrupt or not a Word .docx file ({type(exc).__name__});",
            "an encrypted or old .doc document must be saved as .docx first",
        ) from None
    sections: list[tuple[str, list[str]]] = [("", [])]
    trail: list[tuple[int, str]] = []
    for block in blocks:
        if isinstance(block, Table):
            rows = [[cell.text for cell in row.cells] for row in block.rows]
            sections[-1][1].append(rows_as_text(rows))
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _level(block.style.name if block.style is not None else "")
        if level:
            trail = [t for t in trail if t[0] < level] + [(level, text)]
            sections.append((" > ".join(t[1] for t in trail), [text]))
        else:
            sections[-1][1].append(text)
    docs: list[Document] = []
    start = 0
    for heading, parts in sections:
        body = "\n\n".join(p for p in parts if p)
        if body:
            docs.append(Document(page_content=body, metadata={"start": start, "heading": heading}))
            start += len(body) + 2
    return docs
