"""BM25: the tokenizer, the scoring, and an index that follows ingest (real Chroma, real model)."""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve import bm25
from rag.retrieve.bm25 import BM25Index, Segment, SyncState, tokenize
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
    index = BM25Index.build([f"d{i}" for i in range(5)], texts)
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
    index = BM25Index.build(ids, texts)
    top = index.top("how do embeddings and vectors work in qx7-zephyr", 5)
    assert ids[top[0][0]] == "c17"
    assert top[0][1] > top[1][1] > 0
    assert ids[index.top("ZX990 の埋め込み", 3)[0][0]] == "c31"
    assert index.top("qx7", 5, allowed=np.array([i != 17 for i in range(len(ids))])) == []


_WORDS = ("cosine similarity vectors token chunk index search rare qx7 zephyr "
          "猫 犬 埋め込み ベクトル 検索 類似度 東京 大阪 文書 要約").split()


def _doc(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 25)))


def _same_as_from_scratch(index: BM25Index, corpus: dict[str, tuple[str, str]], queries: list[str]) -> None:
    fresh = BM25Index.build(list(corpus), [t for t, _ in corpus.values()], [p for _, p in corpus.values()])
    assert len(index) == len(fresh) == len(corpus)
    assert {index.ids[r] for r in index.rows.values()} == set(corpus)
    for query in queries:
        got, want = index.scores(query), fresh.scores(query)
        got_by_id = {index.ids[r]: float(got[r]) for r in np.flatnonzero(got)}
        want_by_id = {fresh.ids[r]: float(want[r]) for r in np.flatnonzero(want)}
        assert got_by_id.keys() == want_by_id.keys(), query
        for id_, score in want_by_id.items():
            assert got_by_id[id_] == pytest.approx(score, rel=1e-6, abs=1e-9), (query, id_)
        # the same ranking, ties broken the same way once rows are named by their ids
        assert sorted(got_by_id, key=lambda i: (-got_by_id[i], i)) == \
            sorted(want_by_id, key=lambda i: (-want_by_id[i], i))
        for term in set(tokenize(query)):
            assert index.idf_of(term) == pytest.approx(fresh.idf_of(term), rel=1e-9)


def test_an_index_refreshed_by_adds_and_deletes_scores_as_one_built_from_scratch(tmp_path: Path) -> None:
    """Deltas, dead rows, delta merges and compactions never change a score."""
    rng = random.Random(7)
    corpus = {f"c{i}": (_doc(rng), f"f{i // 4}") for i in range(200)}
    index = BM25Index.build(list(corpus), [t for t, _ in corpus.values()], [p for _, p in corpus.values()])
    queries = ["cosine vectors", "猫と犬の類似度", "qx7-zephyr index", "東京", "nothing here", "rare"]
    shapes = []
    for step in range(40):
        files = sorted({p for _, p in corpus.values()})
        gone = rng.sample(files, min(len(files), rng.randint(0, 2)))
        for id_ in [i for i, (_, p) in corpus.items() if p in gone]:
            del corpus[id_]
        added = {f"s{step}-{k}": (_doc(rng), f"g{step}-{k // 3}") for k in range(rng.randint(0, 9))}
        if step % 7 == 3 and corpus:  # a chunk id that comes back in a new file
            again = next(iter(corpus))
            added[again] = (_doc(rng), f"g{step}-again")
            del corpus[again]
        corpus.update(added)
        new = Segment.from_texts(list(added), [t for t, _ in added.values()], index.vocab,
                                 [p for _, p in added.values()]) if added else None
        # the id that came back is found by its id: its old file did not change
        index = index.updated(index.rows_of_paths(gone), new, str(step), SyncState())
        shapes.append((len(index.segments), len(index.dead_rows)))
        _same_as_from_scratch(index, corpus, queries)
    drops = [(a, b) for (a, _), (b, _) in zip(shapes, shapes[1:], strict=False) if b < a]
    assert (bm25.index.MAX_DELTAS + 1, 2) in drops  # deltas merged into one
    assert any(b == 1 for _, b in drops)  # and everything compacted into one base again
    assert any(d for _, d in shapes)  # dead rows were scored around, not only compacted away

    path = tmp_path / "bm25" / "c.npz"
    bm25.save(index, path, "c")
    loaded = bm25.load(path, "c")
    assert loaded is not None and loaded.ids == index.ids
    _same_as_from_scratch(loaded, corpus, queries)


def test_a_refresh_writes_a_delta_and_keeps_the_base_segment(tmp_path: Path) -> None:
    texts = {f"c{i}": f"document {i} about vectors and 猫" for i in range(50)}
    index = BM25Index.build(list(texts), list(texts.values()), [f"f{i}" for i in range(50)])
    path = tmp_path / "c.npz"
    bm25.save(index, path, "c")
    folder = tmp_path / "c.segments"
    base = index.segments[0].name
    before = (folder / base / "term_rows.npy").stat().st_mtime_ns
    new = Segment.from_texts(["x"], ["a new document about 犬"], index.vocab, ["fx"])
    after = index.updated(index.rows_of_paths(["f3"]), new, "2", SyncState())
    bm25.save(after, path, "c")
    assert [s.name for s in after.segments] == [base, new.name]
    assert (folder / base / "term_rows.npy").stat().st_mtime_ns == before
    assert sorted(p.name for p in folder.iterdir()) == sorted([base, new.name])
    loaded = bm25.load(path, "c")
    assert len(loaded) == 50 and "c3" not in loaded.rows and loaded.rows["x"] == 50
    assert loaded.top("犬", 5) == [(50, pytest.approx(after.scores("犬")[50]))]


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
