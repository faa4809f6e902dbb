"""The keyword half of the debug panel's "Why this hit": matched terms and the fusion sum.

Shows the question's BM25 terms highlighted in the chunk (the chunk text escaped, only our own
`<mark>`s added), a table of each term's idf × tf-part contribution adding up to the BM25 score,
and the fusion arithmetic with the real numbers, then every hit's fused score so the rank can be
checked too. Numbers come from `rag.lens.keyword_why` and `rag.lens.fusion_math`.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import streamlit as st

from rag.lens import fusion_math, keyword_why
from rag.ui import state
from rag.ui.i18n import mode_name

if TYPE_CHECKING:
    from rag.answer.answerer import Answer
    from rag.retrieve.hits import Hit

MARK = "background:#ffe08a;padding:0 1px;border-radius:2px"
TEXT_BOX = ("white-space:pre-wrap;font-family:inherit;line-height:1.7;border:1px solid #ddd;"
            "border-radius:6px;padding:8px 10px;max-height:320px;overflow:auto")


def marked_html(text: str, spans: list[tuple[int, int]], *, style: str = MARK,
                cls: str = "kw") -> str:
    """`text` escaped, with each span wrapped in `<mark>`; nothing of the text becomes markup."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            start = pos
        if end <= start:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f'<mark class="{cls}" style="{style}">{html.escape(text[start:end])}</mark>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_keyword_why(answer: Answer, hit: Hit, key: str) -> None:
    st.markdown("**キーワード側 / The keyword side (BM25)**")
    if hit.bm25_score is None:
        st.info(f"{mode_name(answer.search.mode, 'ja')}モードでは BM25 を使っていません / BM25 took no part in "
                f"{answer.search.mode} mode: the rank is the cosine alone.")
        return
    from rag.retrieve import bm25

    searcher = state.get_searcher()
    index = bm25.index_for(searcher.settings, searcher.collection)
    terms = keyword_why.matched_terms(index, answer.search.query, hit)
    spans = keyword_why.term_spans(hit.text, [m.term for m in terms])
    st.html(f'<div class="rag-keyword-chunk" style="{TEXT_BOX}">{marked_html(hit.text, spans)}</div>')
    if terms:
        total = sum(m.contribution for m in terms)
        st.dataframe({
            "term": [m.term for m in terms],
            "×q": [m.query_count for m in terms],
            "tf": [m.tf for m in terms],
            "idf": [round(m.idf, 4) for m in terms],
            "tf-part": [round(m.tf_part, 4) for m in terms],
            "contribution": [round(m.contribution, 4) for m in terms],
        }, hide_index=True, height=min(36 * (len(terms) + 1) + 4, 300), column_config={
            # the caption's sum is to 4 decimals: the terms too, not `4.14` above `3.8035`
            name: st.column_config.NumberColumn(format="%.4f")
            for name in ("idf", "tf-part", "contribution")})
        st.caption(
            f"Σ contribution = {total:.4f} = BM25 {hit.bm25_score:.4f}. "
            "contribution = ×q × idf × tf-part; tf-part = tf·(k1+1) / (tf + k1·(1−b+b·len/avgdl)), "
            "k1 = 1.2, b = 0.75. 日本語は文字の 2-gram と漢字 1 字が語 / Japanese terms are "
            "character bigrams and single kanji."
        )
    else:
        st.caption("質問の語はこのチャンクに一つもありません / none of the question's terms occurs "
                   "in this chunk: its keyword side is 0 (or the cross-script credit below).")
    if hit.fusion is None:
        return
    st.markdown("**融合の計算 / The fusion, with the real numbers**")
    lines = fusion_math.fusion_lines(hit.fusion)
    st.html('<table class="rag-fusion" style="border-collapse:collapse">' + "".join(
        f'<tr><td style="padding:2px 10px 2px 0">{html.escape(line.label)}</td>'
        f'<td style="padding:2px 10px;font-family:monospace;white-space:nowrap">{html.escape(line.formula)}</td>'
        f'<td style="padding:2px 0;font-family:monospace;white-space:nowrap">= <span class="rag-value">'
        f'{fusion_math.num(line.value)}</span></td></tr>' for line in lines) + "</table>")
    st.caption(fusion_math.summary(hit.fusion))
    f = hit.fusion
    if f.cross_script and f.bm25 > 0:
        st.caption(f"質問とチャンクは別の文字体系ですが、このチャンクには BM25 の一致（{f.bm25:.4f}）があります。"
                   f"キーワード側はその一致とベクトル側の {f.cross_script_weight:g} 倍の大きい方です / the "
                   f"question and the chunk are in different scripts, but this chunk has a real BM25 "
                   f"match ({f.bm25:.4f}): its keyword side is the larger of that match and "
                   f"{f.cross_script_weight:g} × its vector side (the cross-script credit is a "
                   "floor, never a replacement).")
    elif f.cross_script:
        st.caption("このチャンクは質問と別の文字体系なので BM25 は一致し得ません。代わりにベクトル側の "
                   f"{f.cross_script_weight:g} 倍を与えます / the chunk is in the other script than "
                   "the question, so BM25 cannot match it: it is credited "
                   f"{f.cross_script_weight:g} × its vector side instead.")
    bounds = (f"min/max over the {hit.fusion.candidates} candidates of this question "
              f"(top {searcher.settings.hybrid_candidates} of each index)")
    st.caption(f"{bounds}. 順位は融合スコアの降順 / rank = fused score, highest first:")
    ranked = sorted((h for h in answer.search.hits if h.fused_score is not None),
                    key=lambda h: -(h.fused_score or 0.0))
    st.dataframe({
        "rank": [h.rank for h in ranked], "source": [h.source for h in ranked],
        "fused": [fusion_math.num(h.fused_score or 0.0) for h in ranked],
    }, hide_index=True)
