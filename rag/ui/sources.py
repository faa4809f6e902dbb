"""The Sources section under an answer: file, page, similarity (number and bar), text, vector.

Shows what retrieval returned, cited hits first marked ★. Chunk text is shown with `st.text` and
names as code spans (`rag.ui.safe_text`): a document's links and images never go live. Token-level and projection views are
the debug panel's job (`rag.ui.debug_panel`).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from rag.answer.answerer import Answer
from rag.lens import score_meaning
from rag.retrieve.hits import Hit
from rag.ui.citations import open_button
from rag.ui.i18n import t
from rag.ui.safe_text import code_span
from rag.ui.trust_panel import percentiles

PREVIEW_DIMS = 8


def vector_summary(vector: list[float] | None) -> str:
    """`512 dims · norm 1.000 · [0.012, -0.034, …]`: enough to see that it is just numbers."""
    if vector is None:
        return "(no vector)"
    arr = np.asarray(vector, dtype=float)
    head = ", ".join(f"{v:+.4f}" for v in arr[:PREVIEW_DIMS])
    more = ", …" if arr.size > PREVIEW_DIMS else ""
    return f"{arr.size} dims · norm {np.linalg.norm(arr):.4f} · [{head}{more}]"


def render_sources(answer: Answer, *, expanded: bool = False, key: str = "sources") -> None:
    lang = answer.lang
    hits = answer.search.hits
    title = f"📚 {t('sources', lang)} ({len(hits)})"
    with st.expander(title, expanded=expanded):
        if not hits:
            st.caption(t("no_hits", lang))
        pct = percentiles(answer)
        if hits:
            st.caption(score_meaning.model_line(answer.search.embedding.model))
        for hit in hits:
            _render_hit(hit, hit.rank in answer.citations, lang, pct.get(hit.rank))
            open_button(answer, hit, key=f"{key}_open_{hit.rank}")
            st.divider()


def _render_hit(hit: Hit, cited: bool, lang: str, percentile: float | None = None) -> None:
    mark = "★ " if cited else ""
    page = f" · {t('page', lang)} {hit.page}" if hit.page is not None else ""
    left, right = st.columns([3, 2])
    left.markdown(f"**{mark}[{hit.rank}] {code_span(hit.source)}**{page}")
    right.progress(
        max(0.0, min(1.0, hit.score)), text=f"{t('score', lang)} {hit.score:.3f}"
        + (f" · {t('percentile', lang, p=percentile)}" if percentile is not None else ""),
    )
    extra = []
    if hit.bm25_score is not None:
        extra.append(f"BM25 {hit.bm25_score:.3f}")
    if hit.fused_score is not None:
        extra.append(f"fused {hit.fused_score:.4f}")
    if extra:
        st.caption(" · ".join(extra))
    st.text(hit.text)
    st.caption(f"{t('vector', lang)}: {vector_summary(hit.vector)}")
