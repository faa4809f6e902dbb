"""What the debug panel shows, as data: tokens, stored vectors, projections, logprobs, `rag embed`/`map`."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import tiktoken

from rag import store
from rag.answer.answerer import Answerer
from rag.cli import main
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.lens import collection, logprobs, projection, why
from rag.lens import tokens as token_view
from rag.lens import vectors as vector_view
from rag.retrieve.searcher import Searcher
from rag.tokens import ensure_offline_encoding
from tests.fake_openai import FakeOpenAI, pieces

MIXED = "我輩は猫である。名前はまだ無い。Embeddings turn text into vectors 🐈 — 埋め込み！"


def ingest(path: Path) -> None:
    report = Ingestor(get_settings()).ingest([path])
    assert not report.failed


def loaded() -> tuple[Searcher, collection.CollectionVectors]:
    settings = get_settings()
    searcher = Searcher(settings)
    key = collection.collection_key(settings, searcher.info, searcher.collection)
    return searcher, collection.load_vectors(searcher.collection, key)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


# --- tokens ----------------------------------------------------------------------------------------


def test_token_ids_equal_tiktoken_and_groups_spell_the_text() -> None:
    ensure_offline_encoding()
    expected = tiktoken.get_encoding("cl100k_base").encode(MIXED)
    groups = token_view.token_groups(MIXED)
    assert [t.id for g in groups for t in g.tokens] == expected
    assert "".join(g.text for g in groups) == MIXED
    split = [g for g in groups if g.split]
    assert split, "some kanji must cost several byte tokens"
    for g in split:
        assert len(g.text.strip()) == 1 and all(re.fullmatch(r"<[0-9a-f]{2}( [0-9a-f]{2})*>", t.text) for t in g.tokens)
    neko = next(g for g in groups if g.text == "猫")
    assert [t.text for t in neko.tokens] == ["<e7>", "<8c>", "<ab>"]
    stats = token_view.token_stats(MIXED)
    assert stats.tokens == len(expected) and stats.chars == len(MIXED)
    # Japanese costs more tokens per character than English
    assert token_view.token_stats("吾輩は猫である。名前はまだ無い。").chars_per_token < \
        token_view.token_stats("I am a cat. I have no name yet.").chars_per_token


def test_embed_json_shape_and_tokens(capsys: pytest.CaptureFixture[str], local_model) -> None:
    code, data = run_json(capsys, "embed", MIXED)
    assert code == 0
    assert set(data) == {"text", "encoding", "tokens", "token_ids", "embedding", "vector", "norm"}
    assert data["text"] == MIXED and data["encoding"] == "cl100k_base"
    assert data["token_ids"] == tiktoken.get_encoding("cl100k_base").encode(MIXED)
    assert [t["id"] for t in data["tokens"]] == data["token_ids"]
    assert data["embedding"] == {"provider": "local", "model": "use-multilingual-v3", "dims": 512}
    assert len(data["vector"]) == 512
    assert data["norm"] == pytest.approx(float(np.linalg.norm(data["vector"])))
    assert data["norm"] == pytest.approx(1.0, abs=1e-3)
    assert main(["embed", "猫"]) == 0
    human = capsys.readouterr().out
    assert "3 tokens" in human and "<e7>(163)" in human and "512 dims" in human


# --- vectors ---------------------------------------------------------------------------------------


def test_vectors_shown_are_those_stored_in_chroma(corpus: Path, local_model, capsys) -> None:
    ingest(corpus)
    searcher, vectors = loaded()
    stored = searcher.collection.get(include=["embeddings", "documents"])
    assert len(vectors) == len(stored["ids"]) == vectors.total
    for id_, emb in zip(stored["ids"], stored["embeddings"], strict=True):
        row = vectors.row(id_)
        emb = np.asarray(emb)
        assert np.allclose(vectors.matrix[row], emb / np.linalg.norm(emb), atol=1e-6)
    result = searcher.search("猫の名前", k=3, mode="vector")  # compared with exact nearest below
    for hit in result.hits:
        (emb,) = searcher.collection.get(ids=[hit.id], include=["embeddings"])["embeddings"]
        assert np.allclose(collection.hit_vector(hit, vectors), emb, atol=1e-7)
        # a keyword-found hit may come without its vector: it is looked up in the loaded matrix
        bare = dataclasses.replace(hit, vector=None)
        assert np.allclose(collection.hit_vector(bare, vectors), emb / np.linalg.norm(emb), atol=1e-6)
        assert collection.hit_vector(dataclasses.replace(hit, id="gone", vector=None), vectors) is None
        assert np.allclose(hit.vector, emb, atol=1e-7)
    # `rag embed` of a stored chunk's text gives the vector stored for it
    text, (emb,) = stored["documents"][0], stored["embeddings"][:1]
    code, data = run_json(capsys, "embed", text)
    assert code == 0 and np.allclose(data["vector"], emb, atol=1e-5)
    # the similarity histogram's numbers are the cosine to every chunk
    sims = vectors.similarities(result.query_vector)
    row = vectors.row(result.hits[0].id)
    assert sims[row] == pytest.approx(result.hits[0].score, abs=1e-5)
    assert sims.max() == pytest.approx(result.hits[0].score, abs=1e-5)
    assert [vectors.ids[r] for r, _ in vectors.nearest(result.query_vector, 3)] == [h.id for h in result.hits]


def test_collection_cache_follows_the_collection_state(corpus: Path, local_model) -> None:
    ingest(corpus)
    searcher, first = loaded()
    assert loaded()[1] is first  # same state: no reload
    (corpus / "extra.txt").write_text("新しい文書です。キャッシュは作り直されるべきです。", encoding="utf-8")
    ingest(corpus)
    _, second = loaded()
    assert second is not first and second.total == first.total + 1


def test_why_hit_puts_every_number_side_by_side(corpus: Path, local_model) -> None:
    ingest(corpus)
    searcher, vectors = loaded()
    assert why.collection_metric(searcher.collection) == "cosine"
    result = searcher.search("cosine distance", k=2, mode="vector")  # a hit with a Chroma distance
    hit = result.hits[0]
    explained = why.why_hit(result.query_vector, hit.vector, hit.distance,
                          metric=why.collection_metric(searcher.collection))
    assert explained.distance == hit.distance
    assert explained.similarity_from_distance == pytest.approx(hit.score)
    assert explained.cosine == pytest.approx(1 - hit.distance, abs=1e-5)
    assert explained.dot == pytest.approx(float(np.dot(result.query_vector, hit.vector)))
    assert explained.dot == pytest.approx(explained.cosine, abs=1e-4)  # both unit length
    assert explained.positive_share + explained.negative_share == pytest.approx(explained.dot)
    products = np.asarray(result.query_vector) * np.asarray(hit.vector)
    assert [d for d, _ in explained.top_positive] == list(np.argsort(-products)[:20])
    assert [d for d, _ in explained.top_negative] == list(np.argsort(products)[:20])
    assert explained.top_positive[0][1] == pytest.approx(products.max())


def test_vector_exports() -> None:
    vecs = {"query": [0.5, -0.25], "[1] a.md": [0.125, 1.0]}
    assert vector_view.vector_csv(vecs).splitlines() == ["dim,query,[1] a.md", "0,0.5,0.125", "1,-0.25,1.0"]
    assert json.loads(vector_view.vector_json(vecs)) == vecs
    s = vector_view.summarize([3.0, 4.0])
    assert (s.dims, s.norm, s.minimum, s.maximum) == (2, 5.0, 3.0, 4.0)


# --- projections -----------------------------------------------------------------------------------

CATS = ["我輩は猫である。", "拙者は猫でござる。", "猫が窓辺で眠っている。", "The cat is sleeping on the sofa."]
MONEY = ["株価が急落し、日経平均は大きく下がった。", "中央銀行が政策金利を引き上げた。",
         "The stock market fell sharply as bond yields rose."]


@pytest.mark.parametrize("dims", [2, 3])
def test_pca_puts_near_texts_near(local_model, dims: int) -> None:
    from rag.embed.providers import LocalEmbeddings

    m = np.asarray(LocalEmbeddings().embed_documents(CATS + MONEY), dtype=np.float32)
    coords = projection.project(m, "pca", dims)
    assert coords.shape == (len(CATS) + len(MONEY), dims)
    cats, money = coords[: len(CATS)], coords[len(CATS):]
    cat_cat = np.linalg.norm(cats[0] - cats[1])
    assert all(cat_cat < np.linalg.norm(cats[i] - f) for i in (0, 1) for f in money)
    worst_inside = max(np.linalg.norm(a - b) for a in cats for b in cats)
    assert worst_inside < min(np.linalg.norm(a - b) for a in cats for b in money)
    # deterministic: the same input gives the same map
    assert np.allclose(coords, projection.project(m, "pca", dims))


def _clusters(n_per: int, centres: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dims))
    m = np.repeat(c, n_per, axis=0) + 0.15 * rng.standard_normal((centres * n_per, dims))
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("method", ["pca", "tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_projection_methods_keep_clusters_apart(method: str) -> None:
    if method == "umap":
        pytest.importorskip("umap", reason="optional extra: pip install 'rag-lens[umap]'")
    m = _clusters(20, 3, 64)
    coords = projection.project(m, method, 2)
    labels = np.repeat(np.arange(3), 20)
    centroids = np.stack([coords[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.argmin(np.linalg.norm(coords[:, None] - centroids[None], axis=2), axis=1)
    assert (nearest == labels).mean() >= 0.95


def test_pca_matches_an_exact_svd_on_large_input() -> None:
    m = _clusters(300, 8, 700, seed=1)  # min(n, d) > 600: the randomized path
    ours = projection.project(m, "pca", 3)
    centred = m.astype(np.float64) - m.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    exact = centred @ vt[:3].T
    for k in range(3):
        assert abs(np.corrcoef(ours[:, k], exact[:, k])[0, 1]) > 0.999


def _fake_vectors(m: np.ndarray, sources: list[str]) -> collection.CollectionVectors:
    ids = [f"id{i}" for i in range(len(m))]
    return collection.CollectionVectors(("test", uuid.uuid4().hex), ids, [f"text {i}" for i in ids],
                                     sources, m, len(m))


def test_build_map_samples_keeps_hits_marks_query_and_caches() -> None:
    from rag.retrieve.hits import Hit

    m = _clusters(50, 4, 32)
    vectors = _fake_vectors(m, [f"s{i // 50}.md" for i in range(200)])
    hits = [Hit(id="id7", rank=1, text="", metadata={}, score=0.9),
            Hit(id="id199", rank=2, text="", metadata={}, score=0.8)]
    data = projection.build_map(vectors, query=m[7], query_text="q", hits=hits, max_points=40)
    kinds = [p.kind for p in data.points]
    assert kinds.count("query") == 1 and kinds.count("hit") == 2
    assert 40 <= len(data.points) - 1 <= 42 and data.total == 200
    assert {p.id for p in data.points if p.kind == "hit"} == {"id7", "id199"}
    assert {p.rank for p in data.points if p.kind == "hit"} == {1, 2}
    assert not data.cached
    hit7 = next(p for p in data.points if p.id == "id7")
    assert (data.query.x, data.query.y) == pytest.approx((hit7.x, hit7.y), abs=1e-4)
    again = projection.build_map(vectors, query=m[8], hits=hits[:1], max_points=40)
    assert again.cached  # PCA is fitted once per collection state; a new query only projects
    other = [p for p in again.points if p.kind != "query"]
    assert {(p.id, p.x) for p in other} <= {(p.id, p.x) for p in data.points}
    three = projection.build_map(vectors, dims=3, method="tsne", max_points=40, hits=hits[:1])
    assert all(p.z is not None for p in three.points) and three.method == "tsne"
    out = three.as_dict()
    assert set(out) == {"method", "dims", "total", "points"} and set(out["points"][0]) >= {"x", "y", "z", "kind", "source", "text"}


def test_nonlinear_maps_are_fitted_once_and_put_the_query_among_its_hits() -> None:
    from rag.retrieve.hits import Hit

    m = _clusters(30, 3, 32)
    vectors = _fake_vectors(m, [f"s{i // 30}.md" for i in range(90)])
    hits = [Hit(id="id3", rank=1, text="", metadata={}, score=0.9),
            Hit(id="id5", rank=2, text="", metadata={}, score=0.8)]
    first = projection.build_map(vectors, method="tsne", query=m[3], hits=hits)
    assert not first.cached and "centre of its hits" in first.note
    pos = {p.id: np.array([p.x, p.y]) for p in first.points}
    assert np.allclose(pos["query"], (2 * pos["id3"] + pos["id5"]) / 3, atol=1e-6)  # weights 1/rank
    centres = [np.mean([pos[f"id{i}"] for i in range(k * 30, (k + 1) * 30)], axis=0) for k in range(3)]
    assert int(np.argmin([np.linalg.norm(pos["query"] - c) for c in centres])) == 0
    # a new question on the same collection fits nothing: same chunk positions, served from cache
    second = projection.build_map(vectors, method="tsne", query=m[40],
                                  hits=[Hit(id="id40", rank=1, text="", metadata={}, score=0.9)])
    assert second.cached and second.seconds < 0.5
    again = {p.id: np.array([p.x, p.y]) for p in second.points}
    assert all(np.allclose(again[i], pos[i]) for i in pos if i != "query")
    assert np.allclose(again["query"], pos["id40"])


def test_tiny_collections_fall_back_to_pca() -> None:
    vectors = _fake_vectors(_clusters(1, 2, 8), ["a", "b"])
    data = projection.build_map(vectors, method="tsne", dims=3, query=vectors.matrix[0])
    assert data.method == "pca" and "PCA" in data.note and len(data.points) == 3


# --- next-token probabilities ----------------------------------------------------------------------


def test_logprobs_from_the_fake_servers_stream_become_choices(corpus: Path, openai_env: FakeOpenAI) -> None:
    reply = "Chroma はコサイン距離を返します [1]。"
    openai_env.chat_reply = reply
    ingest(corpus)
    answer = Answerer(get_settings()).answer("What does Chroma return?", k=2)
    assert answer.mode == "llm" and answer.logprobs
    choices = logprobs.token_choices(answer.logprobs)
    assert [c.token for c in choices] == pieces(reply)
    assert "".join(c.token for c in choices) == answer.text
    for c, lp in zip(choices, answer.logprobs, strict=True):
        assert c.probability == pytest.approx(math.exp(lp.logprob))
        assert c.alternatives[0] == (c.token, pytest.approx(c.probability))
        assert len(c.alternatives) == 5
        assert [p for _, p in c.alternatives] == sorted((p for _, p in c.alternatives), reverse=True)
        assert sum(p for _, p in c.alternatives) <= 1 + 1e-9
        assert c.runner_up is not None and c.runner_up[0] != c.token
    rows = logprobs.logprob_table(choices)
    assert rows[0]["#"] == 0 and rows[0]["token"] == choices[0].token
    assert rows[0]["p"] == round(choices[0].probability, 4) and "%" in rows[0]["alternatives"]
    assert logprobs.token_choices(None) == []


# --- rag map ---------------------------------------------------------------------------------------


def test_map_out_writes_an_offline_page_with_the_points(corpus: Path, local_model, capsys) -> None:
    ingest(corpus)
    out = Path("maps/map.html")
    assert main(["map", "--out", str(out), "--query", "猫の名前"]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # plotly.js inlined, nothing fetched: works offline
    assert len(page) > 1_000_000  # plotly.js itself
    start = page.index("Plotly.newPlot(")
    traces, _ = json.JSONDecoder().raw_decode(page[page.index(",", start) + 1:].lstrip())
    by_name = {t["name"]: t for t in traces}
    sources = {"ja/neko_sjis.txt", "ja/sushi_eucjp.txt", "cosine.md", "tokens.html", "bom.txt"}
    assert sources <= set(by_name) and {"query", "hits", "query → hits"} <= set(by_name)
    _, vectors = loaded()
    assert sum(len(by_name[s]["x"]) for s in sources) == len(vectors)  # every chunk is a point
    assert any("吾輩は猫である" in h for h in by_name["hits"]["hovertext"])
    assert len(by_name["query"]["x"]) == 1
    assert "wrote maps/map.html" in capsys.readouterr().err


def test_map_json_shape(corpus: Path, local_model, capsys) -> None:
    ingest(corpus)
    searcher, vectors = loaded()
    code, data = run_json(capsys, "map", "--query", "猫の名前", "-k", "2", "--dims", "3")
    assert code == 0
    assert (data["method"], data["dims"], data["total"]) == ("pca", 3, len(vectors))
    kinds = [p["kind"] for p in data["points"]]
    assert kinds.count("query") == 1 and kinds.count("hit") == 2 and kinds.count("chunk") == len(vectors) - 2
    for p in data["points"]:
        assert {"x", "y", "z", "kind", "source", "text"} <= set(p)
    hits = sorted((p for p in data["points"] if p["kind"] == "hit"), key=lambda p: p["rank"])
    assert hits[0]["source"] == "ja/neko_sjis.txt"
    code, flat = run_json(capsys, "map", "--method", "tsne")
    assert code == 0 and flat["dims"] == 2 and all("z" not in p for p in flat["points"])
    assert {p["source"] for p in flat["points"]} == set(vectors.sources)
    assert not Path("rag-map.html").exists()  # --json alone writes no file


def test_map_on_an_empty_store_says_what_to_do(capsys) -> None:
    code, data = run_json(capsys, "map")
    assert code == 1 and data["kind"] == "EmptyStoreError" and "rag ingest" in data["error"]


def test_collection_is_the_one_the_store_opens(corpus: Path, local_model) -> None:
    ingest(corpus)
    settings = get_settings()
    searcher, vectors = loaded()
    coll = store.collection(settings, searcher.info, create=False)
    assert vectors.total == coll.count() and vectors.key[1] == coll.name
