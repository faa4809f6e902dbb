"""The debug panel and the Explorer page, rendered by Streamlit's AppTest on real searches."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from streamlit.testing.v1 import AppTest

from rag import store
from rag.answer.answerer import Answer, Answerer
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.lang import is_japanese
from rag.tokens import ensure_offline_encoding
from rag.ui.debug_panel import COMPARE_DEFAULTS, VIEWS
from tests.fake_openai import FakeOpenAI

QUESTION = "猫の名前は？"


def _panel_script() -> None:
    import streamlit as st

    from rag.ui.debug_panel import render_debug_panel

    render_debug_panel(st.session_state["answer"], key="dbg")


def _explorer_script() -> None:
    from rag.ui.explorer import render_explorer

    render_explorer()


def answer_for(corpus: Path, question: str = QUESTION) -> Answer:
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    return Answerer(get_settings()).answer(question, k=3)


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["dbg_tab"] = label
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def panel(answer: Answer) -> AppTest:
    at = AppTest.from_function(_panel_script, default_timeout=120)
    at.session_state["answer"] = answer
    at.run()
    assert not at.exception, at.exception
    return at


def array(value: object) -> np.ndarray:
    """Plotly ships numpy arrays as base64 typed arrays; lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_all_seven_views_render_for_an_extractive_answer(corpus: Path, local_model) -> None:
    answer = answer_for(corpus)
    assert answer.mode == "extractive"
    hits = answer.search.hits
    at = panel(answer)
    labels = [label["ja"] for label, _ in VIEWS]  # the question is Japanese: so are the tabs
    assert [t.label for t in at.tabs] == labels

    # 1. tokens: cl100k chips with ids (kanji as byte fragments), count, chars/token, USE pieces
    ensure_offline_encoding()
    ids = tiktoken.get_encoding("cl100k_base").encode(QUESTION)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["トークン数 / tokens"] == str(len(ids))
    assert metrics["文字/トークン / chars per token"] == f"{len(QUESTION) / len(ids):.2f}"
    text = markdown(at)
    assert all(f">{i}<" in text for i in ids)
    assert "&lt;e7&gt;" in text and "sentencepiece" in text

    # 2. vector: dims and norm, downloads, one heat strip row per vector
    open_tab(at, labels[1])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["次元 / dims"] == "512" and metrics["ノルム / norm"] == "1.0000"
    assert len(at.get("download_button")) == 2
    (heat,) = figures(at)
    assert heat["data"][0]["type"] == "heatmap"
    assert heat["data"][0]["y"] == ["query"] + [f"[{h.rank}] {h.source}" for h in hits]
    z = array(heat["data"][0]["z"])
    assert z.shape == (len(hits) + 1, 512)
    assert np.allclose(z[0], answer.search.query_vector, atol=1e-6)
    assert np.allclose(z[1], hits[0].vector, atol=1e-6)

    # 3. similarity: top-k bars and the histogram over every chunk, hits marked
    open_tab(at, labels[2])
    bars, hist = figures(at)
    assert answer.search.mode == "hybrid"  # bars show the score that ranked the hits, in order
    assert bars["data"][0]["x"] == pytest.approx([h.fused_score for h in hits])
    assert bars["data"][0]["x"] == sorted(bars["data"][0]["x"], reverse=True)
    table = at.dataframe[0].value
    assert table["cosine"].tolist() == pytest.approx([round(h.score, 4) for h in hits])
    assert hist["data"][0]["type"] == "histogram"
    count = store.collection(get_settings(), answer.search.embedding).count()
    assert len(array(hist["data"][0]["x"])) == count
    assert len(hist["layout"]["shapes"]) == len(hits)

    # 4. projection: chunks by source, the query and its hits, lines between them
    open_tab(at, labels[3])
    (fig,) = figures(at)
    names = [t["name"] for t in fig["data"]]
    assert {"query", "hits", "query → hits"} <= set(names)
    assert hits[0].source in names
    at.session_state["dbg_dims"] = 3
    open_tab(at, labels[3])
    assert {t["type"] for t in figures(at)[0]["data"]} == {"scatter3d"}

    # 5. compare: the two default texts' cosine, computed from the model's vectors
    open_tab(at, labels[4])
    from rag.embed.providers import LocalEmbeddings

    a, b = (np.asarray(v) for v in LocalEmbeddings().embed_documents(list(COMPARE_DEFAULTS)))
    expected = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["コサイン類似度 / cosine similarity"] == f"{expected:.4f}"
    nearest = at.dataframe[0].value
    assert list(nearest.columns) == ["cosine", "source", "text"] and len(nearest) == 5
    # "nearest chunks" follows text A when it changes (it kept the old text before)
    at.text_input(key="dbg_cmp_a").input("寿司の歴史").run()
    (probe,) = [w for w in at.text_input if str(w.key).startswith("dbg_cmp_probe")]
    assert probe.value == "寿司の歴史"
    assert at.dataframe[0].value["source"].iloc[0] == "ja/sushi_eucjp.txt"

    # 6. why this hit: Chroma's distance, the metric, 1 - distance and the dot product together
    open_tab(at, labels[5])
    table = at.table[0].value
    shown = dict(zip(table.iloc[:, 0], table["value"], strict=True))
    top = hits[0]
    assert shown["Chroma distance"] == f"{top.distance:.6f}"
    assert shown["metric"] == "cosine"
    assert shown["1 − distance"] == f"{1 - top.distance:.6f}"
    dot = float(np.dot(answer.search.query_vector, top.vector))
    assert shown["q · c (dot)"] == f"{dot:.6f}"
    assert abs(float(shown["cosine"]) - float(shown["1 − distance"])) < 1e-5
    (contrib,) = figures(at)
    assert len(array(contrib["data"][0]["x"])) == 40
    assert contrib["data"][0]["y"][0].startswith("#")
    assert any("A dimension is one position among the 512 numbers" in c.value for c in at.caption)

    # 7. next token: extractive mode says why there is nothing to show
    open_tab(at, labels[6])
    assert "OPENAI_API_KEY" in at.info[0].value and "Extractive" in at.info[0].value


def test_a_long_question_draws_a_capped_number_of_token_chips(corpus: Path, local_model) -> None:
    from rag.tokens import tokenize
    from rag.ui.debug_panel import MAX_CHIPS

    question = "コサイン類似度とは何ですか？ What is cosine similarity? " * 80  # ~3,000 characters
    answer = answer_for(corpus, question)
    total = len(tokenize(question))
    assert total > 3 * MAX_CHIPS
    at = panel(answer)
    chips = markdown(at).count("font-size:0.7em")  # one token-ID label per chip drawn
    assert MAX_CHIPS <= chips <= MAX_CHIPS + 4, chips  # a split character's fragments stay together
    assert any(f"{total:,} tokens" in c.value for c in at.caption)
    (download,) = [b for b in at.get("download_button") if "tokens.csv" in b.proto.label]
    assert {m.label: m.value for m in at.metric}["トークン数 / tokens"] == str(total)
    # byte fragments keep their own spaces: `<e3 82>`, never `<e3␣82>`
    assert "&lt;e" in markdown(at) and "␣8" not in markdown(at)


def test_next_token_view_shows_the_llms_logprobs(corpus: Path, openai_env: FakeOpenAI) -> None:
    openai_env.chat_reply = "Chroma returns the cosine distance [1]."
    answer = answer_for(corpus, "What does Chroma return?")
    assert answer.mode == "llm" and answer.logprobs
    at = panel(answer)
    open_tab(at, VIEWS[6][0]["en"])
    table = at.dataframe[0].value
    assert list(table["token"]) == [lp.token for lp in answer.logprobs]
    assert table["p"].tolist() == pytest.approx([np.exp(lp.logprob) for lp in answer.logprobs], abs=1e-4)
    assert 'title="' in markdown(at)  # hover lists the alternatives
    # the OpenAI embedding's tokens view has no local sentencepiece section
    open_tab(at, VIEWS[0][0]["en"])
    assert "sentencepiece" not in markdown(at)
    open_tab(at, VIEWS[1][0]["en"])
    assert {m.label: m.value for m in at.metric}["次元 / dims"] == "1536"


def test_hybrid_hits_show_their_keyword_scores(corpus: Path, local_model) -> None:
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    answer = Answerer(get_settings()).answer("酢飯 寿司", k=3, mode="hybrid")
    hits = answer.search.hits
    assert hits and all(h.fused_score is not None for h in hits)
    at = panel(answer)
    open_tab(at, VIEWS[2][0]["ja"])
    table = at.dataframe[0].value
    assert list(table.columns)[:3] == ["rank", "fused score", "cosine"]
    assert list(table.columns)[3:] == ["percentile", "BM25", "source"]
    assert table["fused score"].tolist() == pytest.approx([round(h.fused_score, 4) for h in hits])
    assert table["BM25"].tolist() == [  # BM25 cannot match an English chunk to a Japanese question
        "other language" if not is_japanese(h.text) else
        f"{h.bm25_score:.2f}" + (f" (#{h.bm25_rank})" if h.bm25_rank else "") for h in hits]
    assert "None" not in table.to_string()
    open_tab(at, VIEWS[5][0]["ja"])
    shown = dict(zip(at.table[0].value.iloc[:, 0], at.table[0].value["value"], strict=True))
    assert shown["cosine"] == f"{hits[0].score:.6f}"
    assert "fused_score" in "\n".join(c.value for c in at.caption)


def test_explorer_maps_the_collection_and_places_a_query(corpus: Path, local_model) -> None:
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    at = AppTest.from_function(_explorer_script, default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    fig, compare = figures(at)  # the map, then Compare's heat strips
    assert compare["data"][0]["type"] == "heatmap"
    names = {t["name"] for t in fig["data"]}
    assert {"cosine.md", "ja/neko_sjis.txt"} <= names and "query" not in names
    at.text_input(key="explorer_query").input("寿司の歴史").run()
    assert not at.exception
    fig = figures(at)[0]
    assert {"query", "hits"} <= {t["name"] for t in fig["data"]}
    hits_table = at.dataframe[0].value
    assert hits_table["source"].iloc[0] == "ja/sushi_eucjp.txt"
    at.session_state["explorer_method"] = "tsne"
    at.run()
    assert not at.exception and "TSNE" in figures(at)[0]["layout"]["title"]["text"]


def test_explorer_on_an_empty_store_says_what_to_do() -> None:
    at = AppTest.from_function(_explorer_script, default_timeout=60)
    at.run()
    assert not at.exception
    assert "rag ingest" in at.info[0].value
