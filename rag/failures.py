"""Failures of the layers below us (SQLite, the file system, Chroma's HTTP client) as `RagError`s.

Library code raises `RagError`s for what it expects; these are the ones that surface from deep
inside chromadb, httpx or sqlite3 wherever they happen (a Chroma server killed mid-ingest, a
damaged state file, a data dir under a regular file). The front ends (`rag.cli`, `rag.ui.chat`)
pass any other exception through `explain` so the person sees what to fix, never a traceback.
"""

from __future__ import annotations

import sqlite3

from rag.config import Settings
from rag.errors import ConfigError, RagError, StateError, StoreError


def explain(exc: BaseException, settings: Settings | None) -> RagError | None:
    """The `RagError` a person should see for `exc`, or None when it is not one we know."""
    if isinstance(exc, RagError):
        return exc
    if _is_transport_error(exc) and settings is not None and settings.chroma_host:
        where = f"{settings.chroma_host}:{settings.chroma_port}"
        return StoreError(
            f"Cannot reach the Chroma server at {where} ({type(exc).__name__}): it stopped or the "
            "network dropped.",
            f"Start it (`chroma run --path DIR --host {settings.chroma_host} --port "
            f"{settings.chroma_port}`) and run the command again; documents stored before the "
            "failure stay whole.",
        )
    if isinstance(exc, sqlite3.DatabaseError):
        path = settings.state_db if settings is not None else "RAG_DATA_DIR/state.sqlite3"
        return StateError(
            f"The state file {path} is damaged ({exc}).",
            f"Move it aside (`mv {path} {path}.bad`) and run the command again: it holds only "
            "caches (embeddings, BM25), rebuilt as needed; the documents live in the store.",
        )
    if isinstance(exc, (NotADirectoryError, FileExistsError, PermissionError, IsADirectoryError)):
        where = settings.data_dir if settings is not None else "RAG_DATA_DIR"
        return ConfigError(
            f"Cannot use the data directory {where}: {exc.strerror or exc} ({exc.filename}).",
            "Point RAG_DATA_DIR at a folder you can write to.",
        )
    return None


def _is_transport_error(exc: BaseException) -> bool:
    """httpx's connection failures, however chromadb wraps them."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        return False
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (httpx.TransportError, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
