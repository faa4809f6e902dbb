"""The store: does it answer, does its collection fit the model in use, and does it agree with
itself (the manifest's promised chunks against the chunks held, one record per file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.doctor.report import Check, Diagnosis, fix_of, problem_of
from rag.errors import RagError


def check(settings: Settings, report: Diagnosis, info: Any) -> None:
    """Does the store answer, and do its collections match the model in use?"""
    from rag import store

    report.store = store.describe(settings)
    if not settings.chroma_host and not settings.chroma_dir.exists():
        report.store["collections"] = []
        report.checks.append(Check(
            "store", True, f"embedded store at {settings.chroma_dir} is empty (created by the first "
            "`rag ingest`)"))
        if info is not None:
            report.checks.append(Check(
                "collection", False, f"nothing ingested yet for {info.model}",
                "Run `rag ingest PATH` (or start the app, which ingests docs_corpus/ on first start)."))
        return
    try:
        chroma = store.client(settings)
        chroma.heartbeat()
        collections = store.list_collections(settings)
    except RagError as exc:
        report.checks.append(Check("store", False, problem_of(exc), fix_of(exc)))
        return
    except Exception as exc:  # a store that answers with nonsense
        report.checks.append(Check(
            "store", False, f"the store failed: {type(exc).__name__}: {exc}",
            "Check the Chroma server's log, or move the data dir aside and ingest again."))
        return
    where = report.store.get("path") or f"{settings.chroma_host}:{settings.chroma_port}"
    report.store["collections"] = [c.as_dict() for c in collections]
    report.checks.append(Check("store", True, f"{report.store['mode']} store answers ({where})"))
    if info is None:
        return
    current = next((c for c in collections if c.name == info.collection_name), None)
    for other in collections:
        if other is not current:
            report.checks.append(Check(
                f"collection {other.name}", True,
                f"{other.count} chunks of {other.model} ({other.dims} dims); not used by the current "
                "model, kept for when you switch back"))
    if current is None:
        report.checks.append(Check(
            "collection", False, f"nothing ingested yet for {info.model} ({info.dims} dims)",
            "Run `rag ingest PATH`; collections of other models are not searched."))
        return
    if current.dims != info.dims or current.model != info.model:
        report.checks.append(Check(
            "collection", False,
            f"{current.name} holds {current.dims}-dim vectors of {current.model}, but the model in "
            f"use makes {info.dims}-dim vectors of {info.model}",
            "Run `rag reset --yes` and ingest again, or set the embedding settings back to the "
            "model that made it."))
        return
    report.checks.append(Check(
        "collection", True,
        f"{current.name}: {current.count} chunks, {current.dims} dims = model's {info.dims}"))
    report.checks.append(records_match(settings, info, current.count))
    report.checks.append(one_identity(settings, info))


def one_identity(settings: Settings, info: Any) -> Check:
    """No file recorded twice under two spellings (`en/a.md` and `../en/a.md`, a symlink)."""
    from rag.ingest.paths import path_key, real
    from rag.state import Manifest

    paths = [r.path for r in Manifest(settings, info.collection_name).all() if r.done]
    spellings: dict[str, list[str]] = {}
    for path in paths:
        spellings.setdefault(path_key(real(Path(path))), []).append(path)
    doubled = [names for names in spellings.values() if len(names) > 1]
    if doubled:
        return Check(
            "one identity per file", False,
            f"{len(doubled)} files are stored more than once under different spellings "
            f"(e.g. {' and '.join(doubled[0][:2])})",
            "Run `rag ingest` on their folder again: it keeps one copy, under the real path.")
    return Check("one identity per file", True, f"{len(paths)} files, each stored once")


def records_match(settings: Settings, info: Any, count: int) -> Check:
    """The store's manifest and its chunks should agree: every file finished, every chunk recorded.

    Both live in the store, so this compares the store with itself: the chunk counts the finished
    file records promise against the chunks the collection holds, and files left `writing` by
    an ingest that was killed.
    """
    from rag.state import Manifest

    try:
        records = Manifest(settings, info.collection_name).all()
    except Exception as exc:
        return Check("records", False, f"the manifest could not be read: {type(exc).__name__}: {exc}",
                     "Check the store (see the store check), then run `rag ingest PATH` again.")
    unfinished = [r for r in records if not r.done]
    promised = sum(r.chunks for r in records if r.done)
    if unfinished:
        names = ", ".join(r.source for r in unfinished[:3]) + (" …" if len(unfinished) > 3 else "")
        return Check(
            "records", False,
            f"{len(unfinished)} file(s) were being written when an ingest or delete stopped ({names})",
            "Run the same `rag ingest PATH` again: it finishes them and removes their stale chunks "
            "(add --prune if the files are gone).")
    if count < promised:
        return Check(
            "records", False,
            f"the manifest records {len(records)} files with {promised} chunks, but the collection "
            f"holds only {count}: the store lost chunks (another store, or a reset or delete cut short)",
            "Run `rag ingest PATH` again for the same folders: files whose chunks are missing are "
            "stored again, the rest are skipped; or `rag reset --yes` and ingest again.")
    if count > promised:
        return Check(
            "records", False,
            f"the collection holds {count} chunks but the manifest's {len(records)} files account for "
            f"{promised}: {count - promised} chunks belong to no finished file",
            "Run `rag ingest PATH --prune` for the same folders (it sweeps chunks by file); if the "
            "numbers still differ, `rag reset --yes` and ingest again.")
    return Check("records", True, f"manifest and collection agree ({len(records)} files, {count} chunks)")
