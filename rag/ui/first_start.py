"""First start: ingest the bundled corpus in the background and show how far it got.

The chat box appears as soon as the embedding model is loaded (a question can then be answered
from whatever is indexed); the corpus is ingested on a background thread (`rag.ingest.background`)
in small groups, and a progress line that names its phase (reading files, embedding and storing
chunks) refreshes itself every second until the job is done, then reruns the page once so that
the sidebar's counts and source list are current.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from rag.config import Settings
from rag.ingest.background import JobStatus, current_job, start_job
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ui import state
from rag.ui.i18n import t

POLL_S = 1.0


def ensure_corpus(settings: Settings, corpus_dir: Path) -> None:
    """Start the first-start ingest when the store is empty (once per process), and draw it."""
    searcher = state.get_searcher(settings)  # loads the model behind a labelled spinner
    name = searcher.info.collection_name
    job = current_job(settings, name)
    if job is None and not st.session_state.get("corpus_checked"):
        st.session_state["corpus_checked"] = True
        if _has_documents(corpus_dir) and searcher.count() == 0:
            job = start_job(settings, name, corpus_dir)
    if job is None:
        return
    status = job.status()
    if status.running:
        st.fragment(_progress, run_every=POLL_S)(settings, name, corpus_dir.name)
    elif not st.session_state.get("first_start_reported"):
        st.session_state["first_start_reported"] = True
        _show_finished(status)


def _has_documents(folder: Path) -> bool:
    """Whether the folder holds any file we can read: an empty one is no first-start corpus."""
    if not folder.is_dir():
        return False
    return any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in folder.rglob("*") if p.is_file())


def indexing_note(settings: Settings, lang: str) -> str | None:
    """`indexing 12/24 files · 80/156 chunks searchable` while the first-start ingest runs."""
    searcher = state.get_searcher(settings)
    job = current_job(settings, searcher.info.collection_name)
    if job is None:
        return None
    status = job.status()
    if not status.running:
        return None
    return t("indexing", lang, done=status.files_done, total=status.files_total or "?",
             stored=searcher.count(), chunks=status.chunks)


def progress_label(status: JobStatus, stored: int, folder: str) -> tuple[float, str]:
    """The bar's fraction and a label naming the phase; half for reading, half for storing."""
    total = max(status.files_total, 1)
    read = status.files_done / total
    kept = min(1.0, stored / status.chunks) if status.chunks else 0.0
    fraction = 0.5 * read + 0.5 * kept if status.files_total else 0.0
    head = f"初回の取り込み / First start: {folder}/ — "
    if status.phase == "starting":
        return 0.0, head + "ファイルを探しています / finding files…"
    if status.phase == "reading":
        return fraction, (head + f"読み込み中 / reading {status.files_done}/{status.files_total} "
                          f"files ({status.current}) · {stored}/{status.chunks} chunks "
                          f"検索可能 / searchable · {status.seconds:.0f} s")
    return fraction, (head + f"埋め込みと保存 / embedding and storing: {stored}/{status.chunks} "
                      f"chunks 検索可能 / searchable · {status.seconds:.0f} s")


def _progress(settings: Settings, name: str, folder: str) -> None:
    job = current_job(settings, name)
    if job is None:
        return
    status = job.status()
    if not status.running:
        st.rerun()  # the whole page: the sidebar's counts and sources are stale now
    stored = state.get_searcher(settings).count()
    fraction, label = progress_label(status, stored, folder)
    st.progress(fraction, text=label)
    st.caption("取り込み中でも質問できます（取り込み済みの文書から答えます） / You can ask now: "
               "answers use the documents indexed so far.")


def _show_finished(status: JobStatus) -> None:
    from rag.ui.sidebar import show_report

    if status.phase == "failed":
        st.error(f"初回の取り込みに失敗しました / the first-start ingest failed: {status.error}")
    elif status.report is not None:
        show_report(status.report)
