"""The Sources section under an answer: file, page, the score that ranked it, text, vector.

Shows what retrieval returned, cited hits marked ★. The section starts collapsed so that the
answer, not the last source, is what is in view when it arrives; its title names the cited
sources. Each hit shows first the number that ranked it (fused, BM25 or cosine: `rag.ui.scores`),
then the others, each named. Chunk text is shown as plain text with Markdown's markup removed (`st.text`), names as
code spans (`rag.ui.safe_text`): a document's links and images never go live.
Token-level and projection views are the debug panel's job (`rag.ui.debug_panel`).
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from rag.answer.answerer import Answer
from rag.lens import score_meaning
from rag.retrieve.hits import Hit
from rag.ui import scores
from rag.ui.citations import open_button
from rag.ui.i18n import t
from rag.ui.safe_text import code_span
from rag.ui.trust_panel import percentiles

PREVIEW_DIMS = 8
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")


def vector_summary(vector: list[float] | None) -> str:
    """`512 dims · norm 1.000 · [0.012, -0.034, …]`: enough to see that it is just numbers."""
    if vector is None:
        return "(no vector)"
    arr = np.asarray(vector, dtype=float)
    head = ", ".join(f"{v:+.4f}" for v in arr[:PREVIEW_DIMS])
    more = ", …" if arr.size > PREVIEW_DIMS else ""
    return f"{arr.size} dims · norm {np.linalg.norm(arr):.4f} · [{head}{more}]"


def plain(text: str) -> str:
    """Chunk text for reading: Markdown heading marks and bold markers dropped, nothing rendered."""
    return _EMPHASIS.sub(r"\2", _HEADING.sub("", text)).strip()


def sources_title(answer: Answer) -> str:
    lang = answer.lang
    hits = answer.search.hits
    cited = [f"[{h.rank}]" for h in hits if h.rank in answer.citations]
    kind = scores.name(scores.ranking_kind(hits[0]), lang) if hits else ""
    parts = [f"📚 {t('sources', lang)} ({len(hits)})"]
    if cited:
        parts.append(f"{t('cited', lang)} {' '.join(cited)}")
    if kind:
        parts.append(("順位は" if lang == "ja" else "ranked by ") + kind)
    return " · ".join(parts)


def render_sources(answer: Answer, *, expanded: bool = False, key: str = "sources") -> None:
    lang = answer.lang
    hits = answer.search.hits
    with st.expander(sources_title(answer), expanded=expanded):
        if not hits:
            st.caption(t("no_hits", lang))
        top = max((scores.ranking_value(h) for h in hits), default=1.0) or 1.0
        pct = percentiles(answer)
        if hits:
            st.caption(score_meaning.model_line(answer.search.embedding.model))
        for hit in hits:
            _render_hit(hit, hit.rank in answer.citations, answer, top, pct.get(hit.rank))
            open_button(answer, hit, key=f"{key}_open_{hit.rank}")
            st.divider()


def _render_hit(hit: Hit, cited: bool, answer: Answer, top: float,
                percentile: float | None = None) -> None:
    lang = answer.lang
    mark = "★ " if cited else ""
    page = f" · {t('page', lang)} {hit.page}" if hit.page is not None else ""
    left, right = st.columns([3, 2])
    left.markdown(f"**{mark}[{hit.rank}] {code_span(hit.source)}**{page}")
    kind = scores.ranking_kind(hit)
    value = scores.ranking_value(hit)
    fraction = hit.score if kind == "cosine" else value / top
    number = f"{value:.3f}" if kind != "bm25" else f"{value:.2f}"
    where = f" · {t('percentile', lang, p=percentile)}" if percentile is not None else ""
    # the percentile ranks the cosine among all chunks: it goes beside the cosine
    right.progress(max(0.0, min(1.0, fraction)),
                   text=f"{scores.name(kind, lang)} {number}" + (where if kind == "cosine" else ""))
    line = scores.score_line(hit, answer.standalone_question, lang)
    if line:
        st.caption(line.replace(f"{hit.score:.3f}", f"{hit.score:.3f}{where}", 1) if where else line)
    st.text(plain(hit.text))
    st.caption(f"{t('vector', lang)}: {vector_summary(hit.vector)}")
