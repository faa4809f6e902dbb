"""Hybrid and BM25 modes through the app's `Searcher` and the CLI (real Chroma, real model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.config import Settings, get_settings
from rag.embed.providers import fusion_weights, resolve
from rag.ingest.pipeline import Ingestor
from rag.lang import is_japanese
from rag.retrieve.hybrid import fuse
from rag.retrieve.searcher import Searcher


@pytest.fixture
def ingested(corpus: Path, local_model) -> Path:
    (corpus / "rare.md").write_text(
        "# Part numbers\n\nThe embedding service runs on node QX-4471 in rack 9.\n", encoding="utf-8")
    Ingestor(get_settings()).ingest([corpus])
    return corpus


def _cosine(a: list[float], b: list[float]) -> float:
    a_, b_ = np.asarray(a), np.asarray(b)
    return float(a_ @ b_ / (np.linalg.norm(a_) * np.linalg.norm(b_)))


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_every_hit_carries_its_cosine_and_its_bm25_score(ingested: Path, mode: str) -> None:
    result = Searcher(get_settings()).search("ベクトルと埋め込み cosine similarity", k=4, mode=mode)
    assert result.mode == mode
    assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    assert len(result.hits) >= 2
    for hit in result.hits:
        assert hit.vector is not None
        assert hit.score == pytest.approx(_cosine(hit.vector, result.query_vector), abs=1e-5)
        assert hit.bm25_score is not None and hit.bm25_score >= 0
    if mode == "bm25":
        scores = [h.bm25_score for h in result.hits]
        assert scores == sorted(scores, reverse=True) and scores[-1] > 0
        assert [h.bm25_rank for h in result.hits] == [h.rank for h in result.hits]
    else:
        assert all(h.vector_rank or h.bm25_rank for h in result.hits)


def test_fused_score_is_the_documented_sum_of_its_parts(ingested: Path) -> None:
    """Recompute every candidate's fused score from its cosine and BM25 score alone."""
    settings = get_settings()
    query = "ベクトルと埋め込み cosine similarity"
    everything = Searcher(settings).search(query, k=100, mode="hybrid").hits  # the whole pool
    cos = np.array([h.score for h in everything])
    bm = np.array([h.bm25_score for h in everything])

    def minmax(x: np.ndarray) -> np.ndarray:
        return (x - x.min()) / (x.max() - x.min())

    cross = np.array([is_japanese(h.text) != is_japanese(query) for h in everything])
    w, cross_weight = fusion_weights(settings, resolve(settings))  # the model's own (USE here)
    assert (w, cross_weight) == (0.2, 0.9)
    lexical = minmax(bm)
    lexical[cross] = cross_weight * minmax(cos[cross])  # scaled among the other-script candidates
    expected = w * minmax(cos) + (1 - w) * lexical
    assert [h.fused_score for h in everything] == pytest.approx(list(expected), abs=1e-9)
    assert cross.any() and not cross.all()  # both branches of the sum were exercised


def test_top_of_both_lists_fuses_to_one(ingested: Path) -> None:
    hits = Searcher(get_settings()).search("QX-4471", k=3, mode="hybrid").hits
    top = hits[0]
    assert (top.source, top.vector_rank, top.bm25_rank) == ("rare.md", 1, 1)
    assert top.fused_score == pytest.approx(1.0)  # max of both min-max scaled scores
    assert all(h.fused_score < 1.0 for h in hits[1:])


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_source_filter_applies_to_keyword_candidates(ingested: Path, mode: str) -> None:
    searcher = Searcher(get_settings())
    unfiltered = searcher.search("猫 cosine 寿司 QX-4471", k=5, mode=mode).hits
    assert {h.source for h in unfiltered} >= {"rare.md", "ja/neko_sjis.txt"}
    hits = searcher.search("猫 cosine 寿司 QX-4471", k=5, mode=mode, sources=["cosine.md"]).hits
    assert hits and {h.source for h in hits} == {"cosine.md"}


def test_fusion_arithmetic() -> None:
    cosine = np.array([0.9, 0.5, 0.1])
    bm25 = np.array([0.0, 10.0, 5.0])
    vector_rank, bm25_rank = np.array([1, 2, 3]), np.array([0, 1, 2])
    score = Settings(hybrid_vector_weight=0.25, hybrid_fusion="score")
    assert fuse(cosine, bm25, vector_rank, bm25_rank, score) == pytest.approx(
        [0.25 * 1.0 + 0.75 * 0.0, 0.25 * 0.5 + 0.75 * 1.0, 0.25 * 0.0 + 0.75 * 0.5])
    rrf = Settings(hybrid_vector_weight=0.5, hybrid_fusion="rrf", hybrid_rrf_k=60)
    assert fuse(cosine, bm25, vector_rank, bm25_rank, rrf) == pytest.approx(
        [0.5 / 61, 0.5 / 62 + 0.5 / 61, 0.5 / 63 + 0.5 / 62])


def test_cross_script_candidates_are_judged_by_their_vector() -> None:
    cosine = np.array([0.2, 0.6])  # a same-script keyword match, a cross-script paraphrase
    bm25 = np.array([8.0, 0.0])
    ranks = np.array([2, 1]), np.array([1, 0])
    settings = Settings(hybrid_vector_weight=0.2, hybrid_cross_script_weight=0.9)
    plain = fuse(cosine, bm25, *ranks, settings)
    assert plain == pytest.approx([0.8, 0.2])
    aware = fuse(cosine, bm25, *ranks, settings, cross_script=np.array([False, True]))
    assert aware == pytest.approx([0.8, 0.2 + 0.8 * 0.9])


def test_cross_script_evidence_is_scaled_among_the_other_script_candidates() -> None:
    # a model whose cosines across languages sit lower (e5): the best other-script chunk (0.5)
    # earns the full cross-script credit, the worst (0.4) none, in place of their BM25 zeros
    cosine = np.array([0.9, 0.5, 0.4, 0.3])
    bm25 = np.array([6.0, 0.0, 0.0, 2.0])
    cross = np.array([False, True, True, False])
    ranks = np.array([1, 2, 3, 4]), np.array([1, 0, 0, 2])
    settings = Settings(hybrid_vector_weight=0.6, hybrid_cross_script_weight=1.0)
    vector = (cosine - 0.3) / 0.6
    assert fuse(cosine, bm25, *ranks, settings, cross_script=cross) == pytest.approx(
        [0.6 * vector[0] + 0.4 * 1.0, 0.6 * vector[1] + 0.4 * 1.0, 0.6 * vector[2] + 0.0,
         0.6 * 0.0 + 0.4 * (2.0 / 6.0)])


def test_is_japanese() -> None:
    assert is_japanese("埋め込みとは何ですか？")
    assert is_japanese("BM25 と cosine similarity の違いは、キーワードの一致です。")
    assert is_japanese("Oncorhynchus ketaを日本語で？")
    assert not is_japanese("What is an embedding?")
    assert not is_japanese("Tokenizers split 我輩は猫である into several byte-level tokens, as the "
                           "debug panel's token chips show for any text you type.")
    assert not is_japanese("1234 !!")


def test_english_question_finds_a_japanese_answer_in_hybrid(ingested: Path) -> None:
    # "What is" matches English chunks by keyword; the Japanese answer can only win on meaning.
    top = Searcher(get_settings()).search("What is sushi made of?", k=1, mode="hybrid").hits[0]
    assert top.source == "ja/sushi_eucjp.txt"
    assert top.bm25_score == 0.0


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_cli_search_mode_json(ingested: Path, capsys: pytest.CaptureFixture[str], mode: str) -> None:
    code = main(["search", "which node is QX-4471", "--mode", mode, "-k", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["mode"] == mode
    assert data["hits"][0]["source"] == "rare.md"
    assert {"score", "bm25_score"} <= set(data["hits"][0])
    assert data["hits"][0]["bm25_rank"] == 1
    if mode == "hybrid":
        assert "fused_score" in data["hits"][0]


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
def test_the_mode_in_force_is_used_when_none_is_asked(ingested: Path, monkeypatch, mode: str) -> None:
    monkeypatch.setenv("RAG_RETRIEVAL_MODE", mode)
    get_settings.cache_clear()
    result = Searcher(get_settings()).search("猫", k=1)
    assert result.mode == mode
    assert (result.hits[0].bm25_score is None) == (mode == "vector")
