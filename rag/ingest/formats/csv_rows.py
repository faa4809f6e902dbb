"""CSV/TSV: each row with its header, through the standard library's `csv` module.

The encoding is detected like any text file (Shift_JIS exports from Excel are common in Japan),
the delimiter is sniffed (comma, tab, semicolon), and a file the `csv` module cannot parse is
refused with the line it failed on.
"""

from __future__ import annotations

import csv
import io

from langchain_core.documents import Document

from rag.errors import LoadError
from rag.ingest.formats.table import rows_as_text

_DELIMITERS = ",\t;|"


def load_csv(data: bytes) -> list[Document]:
    from rag.ingest.loaders import decode_text

    text, encoding = decode_text(data)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        body = rows_as_text(reader)
    except csv.Error as exc:
        raise LoadError(f"malformed CSV at line {reader.line_num}: {exc}") from None
    return [Document(page_content=body, metadata={"start": 0, "encoding": encoding})]
