"""Readers for the office formats people keep their documents in, one small module each.

`READERS` maps a file suffix to the module and function that turn its bytes into Documents;
`rag.ingest.loaders` registers them. Modules are imported only when a file of their kind is read,
so the heavy libraries (python-docx, python-pptx, openpyxl) cost nothing otherwise. Each reader
raises `LoadError` with a reason a person understands for a broken or foreign file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from langchain_core.documents import Document

Reader = Callable[[bytes], list[Document]]

READERS: dict[str, str] = {
    ".docx": "rag.ingest.formats.word:load_docx",
    ".pptx": "rag.ingest.formats.slides:load_pptx",
    ".xlsx": "rag.ingest.formats.sheets:load_xlsx",
    ".csv": "rag.ingest.formats.csv_rows:load_csv",
}


def reader_for(suffix: str) -> Reader | None:
    """The reader for a suffix (lower-case, with the dot), or None when it is not an office format."""
    target = READERS.get(suffix)
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
