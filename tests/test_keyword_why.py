"""The keyword side of "Why this hit": term contributions add up to BM25, and the fusion sum
shown in the debug panel adds up to the fused score that ranked the hit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.answer.answerer import Answerer
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.lens import fusion_math, keyword_why
from rag.retrieve import bm25
from rag.retrieve.searcher import Searcher
from rag.ui.debug_panel import VIEWS


def _panel_script() -> None:
    import streamlit as st

    from rag.ui.debug_panel import render_debug_panel

    render_debug_panel(st.session_state["answer"], key="dbg")


def test_term_spans_follow_bm25s_normalisation_and_word_bounds() -> None:
    text = "ＢＭ25とは何か？ BM25 scores; bm25x no. コサイン類似度"
    spans = keyword_why.term_spans(text, ["bm25", "類似", "似度", "サイ"])
    assert [text[s:e] for s, e in spans] == ["ＢＭ25", "BM25", "サイ", "類似度"]
    assert keyword_why.term_spans(text, []) == []


def test_matched_terms_add_up_to_the_hits_bm25_score(corpus: Path, local_model) -> None:
    settings = get_settings()
    assert not Ingestor(settings).ingest([corpus]).failed
    searcher = Searcher(settings)
    result = searcher.search("酢飯に魚介類を合わせた料理", k=3, mode="hybrid")
    index = bm25.index_for(settings, searcher.collection)
    top = result.hits[0]
    assert top.source == "ja/sushi_eucjp.txt"
    terms = keyword_why.matched_terms(index, result.query, top)
    assert {"酢飯", "魚介", "料理"} <= {m.term for m in terms}
    assert sum(m.contribution for m in terms) == pytest.approx(top.bm25_score, rel=1e-5)
    for m in terms:
        assert m.tf >= 1 and m.contribution == pytest.approx(m.query_count * m.idf * m.tf_part, rel=1e-5)
    english = next(h for h in result.hits if h.source == "cosine.md") if any(
        h.source == "cosine.md" for h in result.hits) else None
    if english is not None:  # nothing in common with a Japanese question
        assert keyword_why.matched_terms(index, result.query, english) == []


def _shown_fusion(at: AppTest) -> dict[str, tuple[str, float]]:
    """label -> (formula, value) as the Why tab's fusion table shows them."""
    table = next(h.proto.body for h in at.get("html") if "rag-fusion" in h.proto.body)
    rows = re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td><td[^>]*>= "
                      r'<span class="rag-value">(-?\d+\.\d+)</span>', table)
    return {label: (formula, float(value)) for label, formula, value in rows}


@pytest.mark.parametrize("question", ["酢飯と魚介の料理", "What is sushi made of?"])
def test_the_fused_score_shown_is_the_sum_of_its_shown_parts(corpus: Path, local_model,
                                                             question: str) -> None:
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    answer = Answerer(get_settings()).answer(question, k=3, mode="hybrid")
    at = AppTest.from_function(_panel_script, default_timeout=120)
    at.session_state["answer"] = answer
    at.run()
    at.session_state["dbg_tab"] = VIEWS[5][0]["ja" if answer.lang == "ja" else "en"]  # tabs follow the question
    at.run()
    assert not at.exception, at.exception
    for hit in answer.search.hits:
        at.selectbox(key="dbg_why_hit").set_value(hit).run()
        assert not at.exception, at.exception
        shown = _shown_fusion(at)
        vector, keyword, fused = shown["vector part"], shown["keyword part"], shown["fused"]
        unit = 10 ** -fusion_math.DECIMALS
        # each part is rounded to 6 decimals on its own, so the sum may differ in the last digit
        assert abs(vector[1] + keyword[1] - fused[1]) <= unit + 1e-12
        assert fused[1] == pytest.approx(hit.fused_score, abs=unit / 2 + 1e-12)
        assert fused[0] == f"{vector[1]:.6f} + {keyword[1]:.6f}"
        # and every part is recomputable from the operands shown beside it
        w, v = (float(x) for x in vector[0].split(" × "))
        assert abs(w * v - vector[1]) <= unit
        scaled = shown["minmax(cosine)"]
        c, lo = (float(x) for x in re.findall(r"\((-?[\d.]+) − (-?[\d.]+)\)", scaled[0])[0])
        hi = float(re.findall(r"/ \((-?[\d.]+) − ", scaled[0])[0])
        assert hi > lo and abs((c - lo) / (hi - lo) - scaled[1]) <= 1e-4
        assert hit.fusion is not None
        assert ("keyword side (cross-script credit)" in shown) == hit.fusion.cross_script
    # the rank follows the fused score
    fused = [h.fused_score for h in answer.search.hits]
    assert fused == sorted(fused, reverse=True)
    if question.startswith("What"):
        assert any(h.fusion.cross_script for h in answer.search.hits)


def test_rrf_fusion_records_its_ranks_and_adds_up(corpus: Path, local_model, monkeypatch) -> None:
    monkeypatch.setenv("RAG_HYBRID_FUSION", "rrf")
    get_settings.cache_clear()
    settings = get_settings()
    assert not Ingestor(settings).ingest([corpus]).failed
    hits = Searcher(settings).search("酢飯と魚介の料理", k=3, mode="hybrid").hits
    from rag.embed.providers import fusion_weights, resolve

    w, k = fusion_weights(settings, resolve(settings))[0], settings.hybrid_rrf_k
    for hit in hits:
        f = hit.fusion
        assert f is not None and f.method == "rrf" and f.rrf_k == k
        expected_v = w / (k + f.vector_rank) if f.vector_rank else 0.0
        expected_b = (1 - w) / (k + f.bm25_rank) if f.bm25_rank else 0.0
        assert f.vector_part == pytest.approx(expected_v) and f.lexical_part == pytest.approx(expected_b)
        assert f.vector_part + f.lexical_part == pytest.approx(hit.fused_score)
        lines = {line.label: line for line in fusion_math.fusion_lines(f)}
        assert lines["fused"].value == pytest.approx(hit.fused_score)
        assert lines["fused"].formula == f"{fusion_math.num(f.vector_part)} + {fusion_math.num(f.lexical_part)}"
