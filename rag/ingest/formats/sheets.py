"""Excel .xlsx through openpyxl: each sheet's rows as text (with their header), the sheet as the page.

Cells are read as their last computed values (`data_only`), not formulas, in read-only mode so a
large workbook streams. A sheet is a "page": citations say `page 2` and the heading names the sheet.
"""

from __future__ import annotations

import io
import zipfile

from langchain_core.documents import Document

from rag.errors import LoadError
from rag.ingest.formats.table import rows_as_text


def load_xlsx(data: bytes) -> list[Document]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise LoadError(
            f"corrupt or not an Excel .xlsx file ({type(exc).__name__});",
            "an encrypted or old .xls workbook must be saved as .xlsx first",
        ) from None
    try:
        sheets = book.worksheets
        docs = []
        for number, sheet in enumerate(sheets, start=1):
            text = rows_as_text(sheet.iter_rows(values_only=True))
            docs.append(Document(page_content=text, metadata={
                "page": number, "pages": len(sheets), "start": 0, "heading": sheet.title,
            }))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise LoadError(f"corrupt Excel workbook ({type(exc).__name__})") from None
    finally:
        book.close()
    return docs
