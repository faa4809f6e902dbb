"""PowerPoint .pptx through python-pptx: one page per slide, its text and its speaker notes.

Text comes from every shape with a text frame, tables (rows with their header) and grouped shapes,
in the slide's shape order; the title becomes the heading, notes follow under "ノート / Notes:".
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator

from langchain_core.documents import Document

from rag.errors import LoadError
from rag.ingest.formats.table import rows_as_text

NOTES_LABEL = "ノート / Notes:"


def _shape_texts(shapes: Iterable[object]) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if getattr(shape, "shape_type", None) == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(shape.shapes)  # type: ignore[attr-defined]
        elif getattr(shape, "has_table", False):
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]  # type: ignore[attr-defined]
            yield rows_as_text(rows)
        elif getattr(shape, "has_text_frame", False):
            yield shape.text_frame.text.strip()  # type: ignore[attr-defined]


def load_pptx(data: bytes) -> list[Document]:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(
            f"corrupt or not a PowerPoint .pptx file ({type(exc).__name__});",
            "an encrypted or old .ppt deck must be saved as .pptx first",
        ) from None
    docs = []
    for number, slide in enumerate(slides, start=1):
        parts = [t for t in _shape_texts(slide.shapes) if t]
        if slide.has_notes_slide:
            notes = (slide.notes_slide.notes_text_frame.text or "").strip()
            if notes:
                parts.append(f"{NOTES_LABEL} {notes}")
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        docs.append(Document(page_content="\n".join(parts), metadata={
            "page": number, "pages": len(slides), "start": 0, "heading": title,
        }))
    return docs
