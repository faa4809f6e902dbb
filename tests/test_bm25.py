"""BM25: the tokenizer, the scoring, and an index that follows ingest (real Chroma, real model)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve import bm25
from rag.retrieve.bm25 import BM25Index, TermCounts, tokenize
from rag.state import read_version


def test_japanese_becomes_bigrams_plus_single_kanji() -> None:
    assert tokenize("吾輩は猫である。") == [
        "吾輩", "輩は", "は猫", "猫で", "であ", "ある", "吾", "輩", "猫"]
    assert tokenize("猫") == ["猫"]
    assert tokenize("ねこ") == ["ねこ"]


def test_english_is_lowercased_words_and_nfkc_applies() -> None:
    assert tokenize("Cosine similarity, for UNIT vectors!") == [
        "cosine", "similarity", "for", "unit", "vectors"]
    # full-width Latin and half-width katakana are folded by NFKC
    assert tokenize("ＡＢＣ１２３ ｶﾀｶﾅ") == ["abc123", "カタ", "タカ", "カナ"]


def test_mixed_runs_keep_words_and_cross_script_bigrams() -> None:
    terms = tokenize("BM25とは何か")
    assert "bm25" in terms  # the Latin word inside a Japanese run stays searchable
    assert {"5と", "とは", "は何", "何か", "何"} <= set(terms)
    assert "5月" in tokenize("試験は5月です")


def _reference_bm25(docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 written the slow, obvious way, to pin the sparse implementation."""
    n = len(docs)
    avg = sum(map(len, docs)) / n
    df = Counter(t for d in docs for t in set(d))
    out = []
    for d in docs:
        tf = Counter(d)
        score = 0.0
        for term in query:
            if term in tf:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(d) / avg))
        out.append(score)
    return out


def test_scores_equal_textbook_bm25() -> None:
    texts = [
        "the cat sat on the mat", "the dog chased the cat around the cat tree",
        "vectors and cosine similarity", "猫は縁側で寝ている", "犬と猫はどちらも動物",
    ]
    index = BM25Index(TermCounts.from_texts([f"d{i}" for i in range(5)], texts))
    for query in ("the cat", "cosine vectors dog", "猫が寝る", "nothing matches"):
        expected = _reference_bm25([tokenize(t) for t in texts], tokenize(query))
        assert index.scores(query) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_exact_rare_term_ranks_first() -> None:
    texts = [f"Embeddings map text to vectors; document number {i} explains cosine similarity."
             for i in range(30)]
    texts[17] = "Embeddings map text to vectors. The Qx7-Zephyr index stores them."
    texts.append("埋め込みはテキストをベクトルに変換します。")
    texts.append("埋め込みとベクトル検索。型番はＺＸ９９０です。")
    ids = [f"c{i}" for i in range(len(texts))]
    index = BM25Index(TermCounts.from_texts(ids, texts))
    top = index.top("how do embeddings and vectors work in qx7-zephyr", 5)
    assert ids[top[0][0]] == "c17"
    assert top[0][1] > top[1][1] > 0
    assert ids[index.top("ZX990 の埋め込み", 3)[0][0]] == "c31"
    assert index.top("qx7", 5, allowed=np.array([i != 17 for i in range(len(ids))])) == []


def test_counts_survive_a_merge() -> None:
    """Reusing counts of unchanged chunks gives the same index as building from scratch."""
    texts = {"a": "cosine similarity of vectors", "b": "猫と犬", "c": "token ids and tokens"}
    old = TermCounts.from_texts(list(texts), list(texts.values()))
    texts.pop("b")
    texts["d"] = "犬の散歩と cosine"
    new = TermCounts.from_texts(["d"], [texts["d"]], vocab=old.vocab)
    merged = old.merged(["a", "c"], new)
    fresh = TermCounts.from_texts(["a", "c", "d"], [texts["a"], texts["c"], texts["d"]])
    assert merged.ids == ["a", "c", "d"]
    assert "猫" not in merged.vocab  # terms no chunk uses any more are dropped
    for query in ("cosine", "犬", "tokens"):
        assert BM25Index(merged).scores(query) == pytest.approx(BM25Index(fresh).scores(query))


def _bm25_sources(query: str, n: int = 3) -> list[str]:
    from rag.retrieve.searcher import Searcher

    return [h.source for h in Searcher(get_settings()).search(query, k=n, mode="bm25").hits]


def test_index_follows_ingest_add_and_prune(corpus: Path, local_model, caplog) -> None:
    settings = get_settings()
    ingestor = Ingestor(settings)
    ingestor.ingest([corpus])
    assert _bm25_sources("酢飯")[0] == "ja/sushi_eucjp.txt"
    coll = store.collection(settings, ingestor.info)
    first = bm25.index_for(settings, coll)
    assert len(first) == coll.count()
    assert bm25.index_path(settings, coll.name).is_file()

    new_file = corpus / "rare.md"
    new_file.write_text("# Flux\n\nThe quokkafrobnicator ships with the app.\n", encoding="utf-8")
    ingestor.ingest([corpus])
    with caplog.at_level(logging.INFO, logger="rag.retrieve.bm25"):
        assert _bm25_sources("quokkafrobnicator") == ["rare.md"]
    assert "(1 tokenized) by changed files" in caplog.text  # only the new file was read again
    second = bm25.index_for(settings, coll)
    assert second.version > first.version and len(second) == len(first) + 1

    new_file.unlink()
    ingestor.ingest([corpus], prune=True)
    assert _bm25_sources("quokkafrobnicator") == []
    assert len(bm25.index_for(settings, coll)) == coll.count() == len(first)


def test_index_is_reloaded_from_disk_by_a_new_process(corpus: Path, local_model) -> None:
    settings = get_settings()
    ingestor = Ingestor(settings)
    ingestor.ingest([corpus])
    coll = store.collection(settings, ingestor.info)
    built = bm25.index_for(settings, coll)
    bm25.clear_memory()
    loaded = bm25.index_for(settings, coll)
    assert loaded is not built
    assert loaded.ids == built.ids
    assert loaded.version == read_version(settings, coll.name) != ""
    assert loaded.scores("cosine") == pytest.approx(built.scores("cosine"))


def test_a_torn_index_file_is_rebuilt(corpus: Path, local_model) -> None:
    settings = get_settings()
    ingestor = Ingestor(settings)
    ingestor.ingest([corpus])
    coll = store.collection(settings, ingestor.info)
    bm25.index_for(settings, coll)
    bm25.index_path(settings, coll.name).write_bytes(b"not an npz")
    bm25.clear_memory()
    assert len(bm25.index_for(settings, coll)) == coll.count()
