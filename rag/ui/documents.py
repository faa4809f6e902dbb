"""The Documents page: every ingested document, its extracted text with chunk and page marks, actions.

The list (source, type, size, pages, chunks, when, garbled pages; the model once, above it) and
each document's chunks come from `rag.documents` (a large store lists a bounded part, narrowed by name); upload, re-index
and delete go through the same pipeline as the CLI. Pages whose text looks garbled are named with
the reason above the text.
"""

from __future__ import annotations

import html
import time
from itertools import groupby

import streamlit as st

from rag.config import Settings
from rag.documents import (
    ChunkView,
    DocumentInfo,
    DocumentList,
    delete_document,
    document_chunks,
    list_documents,
    page_text,
    reindex_document,
)
from rag.errors import RagError
from rag.ingest.pipeline import IngestReport
from rag.progress import Progress, ProgressFn
from rag.ui import state
from rag.ui.i18n import both
from rag.ui.safe_text import literal_line

MAX_CHUNKS_SHOWN = 300
OPEN_KEY = "doc_open"
_MARK_STYLE = ("background:#fde68a;color:#78350f;border-radius:4px;padding:0 4px;"
               "font-size:0.75em;font-family:monospace;white-space:nowrap")


def render_documents(settings: Settings) -> None:
    st.title(both("文書", "Documents"))
    info = state.get_searcher(settings).info
    _render_upload(settings)
    query = st.text_input(both("名前で絞り込み", "Filter by name"), key="doc_filter",
                          placeholder="例: hnsw / e.g. cosine")
    listed = list_documents(settings, info, contains=query)
    shown = listed.docs
    st.caption(f"{len(shown)}{'' if listed.complete else '+'} / {listed.total:,} {both('文書', 'documents')}"
               f" · {both('モデル', 'model')} {info.model} ({info.dims}) · `{info.collection_name}`"
               + _partial_note(listed))
    if not listed.total:
        st.info(both("まだ文書がありません。上からファイルを追加してください。",
                     "No documents yet: add files above, or run `rag ingest PATH`."))
        return
    st.dataframe([_row(d) for d in shown], hide_index=True, width="stretch")
    names = [d.source for d in shown]
    if st.session_state.get(OPEN_KEY) not in names:
        st.session_state.pop(OPEN_KEY, None)
    pick = st.selectbox(both("開く", "Open"), names, index=None, key=OPEN_KEY,
                        placeholder=both("文書を選ぶ", "Choose a document"))
    if pick is not None:
        _render_document(settings, next(d for d in shown if d.source == pick))


def _partial_note(listed: DocumentList) -> str:
    """What a large store's list leaves out, and how to reach the rest."""
    note = ""
    if not listed.complete:
        note += both(f" · 先頭 {len(listed.docs)} 件のみ表示：名前で絞り込んでください",
                     f" · showing the first {len(listed.docs)}: filter by name to find others")
    if listed.store_filter:
        note += both(" · 絞り込みはパスの完全一致（大文字小文字を区別）", " · filter: exact case, anywhere in the path")
    return note


def _row(doc: DocumentInfo) -> dict[str, object]:
    return {
        both("出典", "source"): doc.source,
        both("種類", "type"): doc.type,
        both("サイズ", "size"): _size(doc.size),
        both("ページ", "pages"): str(doc.pages or "—"),
        both("チャンク", "chunks"): doc.chunks,
        both("取り込み", "ingested"): time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.ingested_at))
        if doc.ingested_at else "",
        "⚠": len(doc.flags) or "",
    }


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1048576:.1f} MB"


def _render_document(settings: Settings, doc: DocumentInfo) -> None:
    st.subheader(f"📄 {literal_line(doc.source)}")
    st.caption(f"{literal_line(str(doc.path))} · {doc.type} · {_size(doc.size)} · {doc.chunks} chunks"
               + (f" · {doc.pages} pages" if doc.pages else ""))
    for flag in doc.flags:
        st.warning(f"{both('文字化けの疑い', 'Garbled text?')} — {flag}", icon="⚠️")
    left, right = st.columns(2)
    if left.button(f"🔄 {both('再インデックス', 'Re-index')}", key="doc_reindex", width="stretch"):
        with st.spinner(both("取り込み中", "Ingesting") + "…"):
            try:
                _report_next_run(reindex_document(settings, doc))
            except RagError as exc:
                _say("error", str(exc))
        st.rerun()
    with right.popover(f"🗑 {both('削除', 'Delete')}", width="stretch"):
        name = literal_line(doc.source)
        st.markdown(both(f"{name} を索引から削除します（元のファイルは残ります）。",
                         f"Remove {name} from the index (the file itself stays)."))
        st.button(both("削除する", "Delete it"), key="doc_delete_confirm", type="primary",
                  on_click=_delete, args=(settings, doc))
    chunks = document_chunks(settings, doc.path, state.get_searcher(settings).info)
    if len(chunks) > MAX_CHUNKS_SHOWN:
        st.caption(f"{both('先頭のみ表示', 'Showing the first')} {MAX_CHUNKS_SHOWN} / {len(chunks)} chunks")
        chunks = chunks[:MAX_CHUNKS_SHOWN]
    for page, group in groupby(chunks, key=lambda c: c.page):
        _render_page(page, list(group))


def _render_page(page: int | None, chunks: list[ChunkView]) -> None:
    if page is not None:
        ocr = " · OCR" if any(c.ocr for c in chunks) else ""
        heading = chunks[0].heading
        st.markdown(f"##### {both('ページ', 'page')} {page}{ocr}" + (f" — {literal_line(heading)}" if heading else ""))
    by_chunk = {c.chunk: c for c in chunks}
    parts = []
    for number, text in page_text(chunks):
        c = by_chunk[number]
        label = f"⟦chunk {number}" + (f" · {c.tokens} tok" if c.tokens is not None else "") + "⟧"
        title = html.escape(c.heading or "", quote=True)
        parts.append(f'<span class="rag-chunk" style="{_MARK_STYLE}" title="{title}">{label}</span>'
                     f"{html.escape(text)}")
    st.markdown(
        '<div class="rag-doc-text" style="white-space:pre-wrap;line-height:1.7">' + "".join(parts) + "</div>",
        unsafe_allow_html=True,
    )


def _say(kind: str, message: str) -> None:
    """A message for the next run, which draws the list again with the change in it."""
    st.session_state.setdefault("doc_messages", []).append((kind, message))


def _delete(settings: Settings, doc: DocumentInfo) -> None:
    try:
        deleted = delete_document(settings, doc.path)
    except RagError as exc:
        _say("error", str(exc))
        return
    st.session_state.pop(OPEN_KEY, None)
    name = literal_line(doc.source)
    _say("success", both(f"{name} を削除しました（{deleted} チャンク）", f"Deleted {name} ({deleted} chunks)"))


def _render_upload(settings: Settings) -> None:
    for kind, message in st.session_state.pop("doc_messages", []):
        getattr(st, kind)(message)
    from rag.ingest.loaders import SUPPORTED_SUFFIXES

    files = st.file_uploader(
        f"➕ {both('ファイルを追加', 'Add files')}", accept_multiple_files=True,
        type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
        key=f"doc_uploads_{st.session_state.get('doc_uploads_round', 0)}",
        max_upload_size=max(1, int(settings.max_file_mb + 0.999)),
    )
    if files and st.button(both("取り込む", "Ingest"), key="doc_ingest", width="stretch"):
        from rag.ingest.uploads import ingest_uploads

        bar = st.progress(0.0, text=both("取り込み中", "Ingesting") + "…")
        try:
            report, rejected = ingest_uploads(
                settings, [(f.name, f.getvalue()) for f in files], progress=_progress(bar))
        except RagError as exc:
            st.error(str(exc))
            return
        finally:
            bar.empty()
        for item in rejected:
            _say("warning", f"{item.name}: {item.reason}")
        if report is not None:
            _report_next_run(report)
        st.session_state["doc_uploads_round"] = st.session_state.get("doc_uploads_round", 0) + 1
        st.rerun()


def _progress(bar: st.delta_generator.DeltaGenerator) -> ProgressFn:
    def update(event: Progress) -> None:
        total = max(event.total or 1, 1)
        bar.progress(min(event.done / total, 1.0),
                     text=f"{event.done}/{event.total} · {event.chunks or 0} chunks · "
                          f"{event.item.rsplit('/', 1)[-1]}")

    return update


def _report_next_run(report: IngestReport) -> None:
    _say("success", f"{report.files_read} ファイル / files · +{report.added} chunks "
                    f"({report.skipped} unchanged, {report.deleted} removed) · {report.seconds:.1f} s")
    for path, reason in report.failed:
        _say("warning", f"{path.rsplit('/', 1)[-1]}: {reason}")
    for path, flag in report.flagged:
        _say("warning", f"⚠️ {both('文字化けの疑い', 'Garbled text?')} {path.rsplit('/', 1)[-1]}: {flag}")
