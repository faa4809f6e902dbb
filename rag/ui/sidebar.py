"""The sidebar: what is in use and why, retrieval controls, uploads, clear chat; first-start ingest.

Returns the chosen retrieval options as `SearchOptions` for the chat to pass to `Answerer.stream`.
Labels are bilingual because they are read before any question is asked.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from rag.config import Settings, mask_url
from rag.errors import RagError
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ingest.pipeline import IngestReport
from rag.progress import Progress, ProgressFn
from rag.retrieve.options import SearchOptions
from rag.ui import state
from rag.ui.i18n import both

log = logging.getLogger(__name__)

RETRIEVAL_MODES: dict[str, str] = {
    "vector": "ベクトル / Vector",
    "bm25": "キーワード / BM25",
    "hybrid": "ハイブリッド / Hybrid",
}


def render_sidebar(settings: Settings) -> SearchOptions:
    with st.sidebar:
        st.header("RAG Lens")
        _render_models(settings)
        st.divider()
        controls = _render_controls(settings)
        st.divider()
        _render_upload(settings)
    return controls


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
    st.markdown(
        f"**{both('コレクション', 'Collection')}**  \n`{emb.collection_name}` · "
        f"{searcher.count()} chunks"
    )


def _render_controls(settings: Settings) -> SearchOptions:
    k = st.slider(both("検索件数 k", "Results"), 1, 20, min(settings.top_k, 20), key="k")
    threshold = st.slider(
        both("類似度しきい値", "Score threshold"), 0.0, 1.0, float(max(settings.score_threshold, 0.0)),
        step=0.05, key="threshold",
        help="これ未満のコサイン類似度の出典は使いません / Sources below this cosine similarity are dropped",
    )
    mmr = st.toggle(both("多様性 (MMR)", "Diversify (MMR)"), value=False, key="mmr")
    mode = st.radio(
        both("検索方式", "Retrieval mode"), list(RETRIEVAL_MODES),
        index=list(RETRIEVAL_MODES).index(settings.retrieval_mode),
        format_func=RETRIEVAL_MODES.__getitem__, key="retrieval_mode",
    )
    chosen = st.multiselect(
        both("出典で絞り込み", "Only these sources"), _source_names(settings), key="source_filter",
        placeholder="すべて / All",
    )
    return SearchOptions().with_(k=k, threshold=threshold or None, mmr=mmr, mode=mode,
                                 sources=chosen or None)


def _source_names(settings: Settings) -> list[str]:
    from rag.state import Manifest

    searcher = state.get_searcher(settings)
    return Manifest(settings, searcher.info.collection_name).sources()


def _render_upload(settings: Settings) -> None:
    files = st.file_uploader(
        both("ファイルを追加", "Add files"), accept_multiple_files=True,
        type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES), key="uploads",
        max_upload_size=max(1, math.ceil(settings.max_file_mb)),
    )
    if files and st.button(both("取り込む", "Ingest"), width="stretch", key="ingest_uploads"):
        from rag.ingest.uploads import ingest_uploads

        bar = st.progress(0.0, text="取り込み中 / Ingesting…")
        try:
            report, rejected = ingest_uploads(
                settings, [(f.name, f.getvalue()) for f in files], progress=_progress_to(bar),
            )
        except RagError as exc:
            bar.empty()
            st.error(str(exc))
            return
        bar.empty()
        for item in rejected:
            st.warning(f"{item.name}: {item.reason}")
        if report is not None:
            _show_report(report)


def _progress_to(bar: DeltaGenerator) -> ProgressFn:
    def update(event: Progress) -> None:
        done = event.done / max(event.total or 1, 1)
        bar.progress(done, text=f"{event.done}/{event.total} · {event.chunks} chunks · "
                                f"{Path(event.item).name}")

    return update


def _show_report(report: IngestReport) -> None:
    st.success(
        f"{report.files_read} ファイル / files · +{report.added} chunks "
        f"({report.skipped} unchanged) · {report.seconds:.1f} s"
    )
    for path, reason in report.failed:
        st.warning(f"{Path(path).name}: {reason}")
    for path, flag in report.flagged:
        st.warning(f"{both('文字化けの疑い', 'Garbled text?')} {Path(path).name}: {flag}", icon="⚠️")


def ensure_corpus(settings: Settings, corpus_dir: Path) -> None:
    """On first start with an empty collection, ingest the bundled corpus with a progress bar.

    Tried once per browser session: a missing or unreadable corpus leaves the empty-store message
    in place instead of retrying on every rerun.
    """
    if st.session_state.get("corpus_checked"):
        return
    st.session_state["corpus_checked"] = True
    if state.get_searcher(settings).count() > 0 or not corpus_dir.is_dir():
        return
    from rag.ingest.pipeline import Ingestor

    bar = st.progress(0.0, text=f"初回の取り込み / First start: ingesting {corpus_dir.name}/ …")
    try:
        report = Ingestor(settings).ingest([corpus_dir], progress=_progress_to(bar), lock_wait_s=300)
    finally:
        bar.empty()
    log.info("first-start ingest of %s: %s", corpus_dir, report.as_dict())
    _show_report(report)
