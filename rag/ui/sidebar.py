"""The sidebar: the collection and uploads, what is in use and why, retrieval controls, clear chat.

Returns the chosen retrieval options as `SearchOptions` for the chat to pass to `Answerer.stream`.
Labels are bilingual because they are read before any question is asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from rag.config import Settings, mask_url
from rag.errors import RagError
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ingest.pipeline import IngestReport
from rag.progress import Progress, ProgressFn
from rag.retrieve.options import SearchOptions
from rag.state import SOURCES_LISTED
from rag.ui import state
from rag.ui.i18n import both
from rag.ui.scores import score_range

RETRIEVAL_MODES: dict[str, str] = {
    "vector": "ベクトル / Vector",
    "bm25": "キーワード / BM25",
    "hybrid": "ハイブリッド / Hybrid",
}


def render_sidebar(settings: Settings, then: Callable[[], None] | None = None) -> SearchOptions:
    """Collection and uploader first (within the first screen), then `then` (the saved
    conversations), then models and controls."""
    with st.sidebar:
        st.header("RAG Lens")
        _render_collection(settings)
        _render_upload(settings)
        st.divider()
        if then is not None:
            then()
        _render_models(settings)
        st.divider()
        controls = _render_controls(settings)
    return controls


def _render_collection(settings: Settings) -> None:
    """The collection's size; refreshed every second while the first-start ingest runs."""
    from rag.ingest.background import current_job

    job = current_job(settings, state.get_searcher(settings).info.collection_name)
    if job is not None and job.status().running:
        st.fragment(_collection_line, run_every=1.0)(settings)
    else:
        _collection_line(settings)


def _collection_line(settings: Settings) -> None:
    searcher = state.get_searcher(settings)
    st.markdown(
        f"**{both('コレクション', 'Collection')}**  \n`{searcher.info.collection_name}` · "
        f"{searcher.count()} chunks"
    )


def _render_models(settings: Settings) -> None:
    searcher = state.get_searcher(settings)
    answerer = state.get_answerer(settings)
    emb, llm = searcher.info, answerer.info
    st.markdown(f"**{both('埋め込み', 'Embedding')}**  \n`{emb.model}` ({emb.provider}, {emb.dims} dims)")
    st.caption(emb.reason)
    if llm.mode == "llm":
        where = mask_url(settings.openai_base_url) or "api.openai.com"
        st.markdown(f"**{both('回答', 'Answers')}**  \nLLM `{llm.model}` @ {where}")
        st.caption(llm.reason)
    else:
        st.markdown(f"**{both('回答', 'Answers')}**  \n{both('抽出モード', 'Extractive')}")
        st.info(
            "LLM未設定: 文書から質問に最も近い文を引用して答えます。OPENAI_API_KEY または "
            "OPENAI_BASE_URL を設定すると LLM が回答します。\n\n"
            "No LLM configured: answers quote the document sentences closest to the question. "
            "Set OPENAI_API_KEY or OPENAI_BASE_URL to answer with an LLM.",
            icon="ℹ️",
        )


def _render_controls(settings: Settings) -> SearchOptions:
    k = st.slider(both("検索件数 k", "Results"), 1, 20, min(settings.top_k, 20), key="k")
    model = state.get_searcher(settings).info.model
    span = score_range(model)
    start = float(min(max(settings.score_threshold, span.low), span.high))
    typical = (f" このモデルで関連する出典はおよそ {span.typical} / for {model}, relevant sources "
               f"typically score {span.typical}." if span.typical else "")
    threshold = st.slider(
        both("コサイン類似度しきい値", "Cosine threshold"), span.low, span.high, start,
        step=0.01, key=f"threshold_{model}",
        help="これ未満のコサイン類似度の出典は使いません（左端 = しきい値なし） / Sources whose cosine "
             "similarity is below this are dropped (far left = no threshold)." + typical,
    )
    mmr = st.toggle(both("多様性 (MMR)", "Diversify (MMR)"), value=False, key="mmr")
    mode = st.radio(
        both("検索方式", "Retrieval mode"), list(RETRIEVAL_MODES),
        index=list(RETRIEVAL_MODES).index(settings.retrieval_mode),
        format_func=RETRIEVAL_MODES.__getitem__, key="retrieval_mode",
    )
    names = _source_names(settings)
    more = len(names) >= SOURCES_LISTED  # a bounded part of a large store's: any other name may be typed
    chosen = st.multiselect(
        both("出典で絞り込み", "Only these sources"), names, key="source_filter",
        placeholder=both("すべて（名前を入力）", "All (type a name)") if more else "すべて / All",
        accept_new_options=more,
    )
    return SearchOptions().with_(k=k, threshold=threshold if threshold > span.low else None,
                                 mmr=mmr, mode=mode, sources=chosen or None)


def _source_names(settings: Settings) -> list[str]:
    from rag.state import Manifest

    searcher = state.get_searcher(settings)
    return Manifest(settings, searcher.info.collection_name).sources()


def _render_upload(settings: Settings) -> None:
    """Uploads, then a rerun so the collection's count and the source list include them."""
    round_ = st.session_state.get("upload_round", 0)
    files = st.file_uploader(
        both("ファイルを追加", "Add files"), accept_multiple_files=True,
        type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES), key=f"uploads_{round_}",
        max_upload_size=max(1, math.ceil(settings.max_file_mb)),
    )
    for kind, text in st.session_state.pop("upload_notes", []):
        (st.success if kind == "success" else st.warning if kind == "warning" else st.error)(text)
    if files and st.button(both("取り込む", "Ingest"), width="stretch", key="ingest_uploads"):
        from rag.ingest.uploads import ingest_uploads

        bar = st.progress(0.0, text="取り込み中 / Ingesting…")
        notes: list[tuple[str, str]] = []
        try:
            report, rejected = ingest_uploads(
                settings, [(f.name, f.getvalue()) for f in files], progress=_progress_to(bar),
            )
        except RagError as exc:
            bar.empty()
            st.error(str(exc))
            return
        bar.empty()
        notes += [("warning", f"{item.name}: {item.reason}") for item in rejected]
        if report is not None:
            notes += report_notes(report)
        st.session_state["upload_notes"] = notes
        st.session_state["upload_round"] = round_ + 1  # a fresh, empty uploader
        st.rerun()


def _progress_to(bar: DeltaGenerator) -> ProgressFn:
    def update(event: Progress) -> None:
        total = event.total or 1
        done = event.done / max(total, 1)
        if event.done < total:
            text = (f"読み込み中 / reading {event.done}/{event.total} · "
                    f"{event.chunks} chunks · {Path(event.item).name}")
        else:  # every file is chunked; the last groups are still being embedded and stored
            text = f"埋め込みと保存 / embedding and storing {event.chunks} chunks…"
        bar.progress(done, text=text)

    return update


def report_notes(report: IngestReport) -> list[tuple[str, str]]:
    """What an ingest did, as (kind, text): success only when something was read."""
    notes: list[tuple[str, str]] = []
    if report.files_read or report.skipped:
        notes.append(("success", f"{report.files_read} ファイル / files · +{report.added} chunks "
                                 f"({report.skipped} unchanged) · {report.seconds:.1f} s"))
    elif not report.failed:
        notes.append(("warning", "読み込めるファイルがありませんでした / no readable files were found"))
    notes += [("warning", f"{Path(path).name}: {reason}") for path, reason in report.failed]
    notes += [("warning", f"⚠️ {both('文字化けの疑い', 'Garbled text?')} {Path(path).name}: {flag}")
              for path, flag in report.flagged]
    return notes


def show_report(report: IngestReport) -> None:
    for kind, text in report_notes(report):
        (st.success if kind == "success" else st.warning)(text)
