"""Ingest end to end: real files, the real local model, real Chroma (embedded and server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher
from rag.state import Manifest
from tests.conftest import NEKO


def ingest(paths: list[Path], **kwargs):
    return Ingestor(get_settings()).ingest(paths, **kwargs)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_encodings_are_detected_and_searchable(corpus: Path, local_model, store_mode: str) -> None:
    report = ingest([corpus])
    assert report.failed == []
    assert report.files_read == 5
    assert report.files_unsupported == 1  # notes.rtf; .hidden.txt is not even considered
    hits = Searcher(get_settings()).search("猫の名前", k=3, mode="vector").hits
    assert hits[0].source == "ja/neko_sjis.txt"
    assert hits[0].text.startswith("吾輩は猫である")
    assert 0 < hits[0].score <= 1
    assert hits[0].score == pytest.approx(1 - hits[0].distance)
    sushi = Searcher(get_settings()).search("日本の料理 寿司", k=1, mode="vector").hits[0]
    assert sushi.source == "ja/sushi_eucjp.txt"
    assert "酢飯" in sushi.text


def test_html_keeps_visible_text_only(corpus: Path, local_model) -> None:
    ingest([corpus])
    coll = store.collection(get_settings(), Ingestor(get_settings()).info)
    docs = coll.get(where={"source": "tokens.html"}, include=["documents", "metadatas"])
    text = " ".join(docs["documents"])
    assert "integer token IDs" in text
    assert "SCRIPT_TEXT_MUST_NOT_BE_INDEXED" not in text
    assert "color:red" not in text
    assert docs["metadatas"][0]["heading"] == "Tokens"


def test_html_inline_elements_stay_in_their_sentence() -> None:
    from rag.ingest.loaders import _load_html

    page = ("<h1>ANN</h1><p>An index returns results that are <em>usually</em> the true top k; "
            "run <code>make run</code> and open <a href='#'>the app</a>.</p><ul><li>one</li>"
            "<li>two</li></ul>")
    (doc,) = _load_html(page)
    assert doc.page_content.splitlines() == [
        "ANN", "An index returns results that are usually the true top k; run make run and open "
        "the app.", "one", "two"]


def test_chunk_metadata(corpus: Path, local_model) -> None:
    ingest([corpus])
    coll = store.collection(get_settings(), Ingestor(get_settings()).info)
    got = coll.get(where={"source": "cosine.md"}, include=["documents", "metadatas"])
    metas = sorted(got["metadatas"], key=lambda m: m["chunk"])
    assert [m["chunk"] for m in metas] == list(range(len(metas)))
    assert {m["heading"] for m in metas} == {"Cosine similarity", "Cosine similarity > Distance"}
    text = (corpus / "cosine.md").read_text(encoding="utf-8")
    for doc, meta in zip(got["documents"], got["metadatas"], strict=True):
        assert text[meta["start"]:].startswith(doc[:20])
        assert meta["tokens"] > 0
        assert meta["path"] == str(corpus / "cosine.md")


def test_rerun_adds_nothing_and_embeds_nothing(corpus: Path, local_model, store_mode: str) -> None:
    first = ingest([corpus])
    assert first.added > 0
    second = ingest([corpus])
    assert (second.added, second.deleted, second.files_read) == (0, 0, 0)
    assert second.files_unchanged == 5
    assert second.skipped == first.added


def test_changed_file_replaces_its_chunks(corpus: Path, local_model, store_mode: str) -> None:
    ingest([corpus])
    target = corpus / "ja" / "neko_sjis.txt"
    target.write_bytes("吾輩は犬である。名前はポチ。散歩が大好きです。".encode("cp932"))
    report = ingest([corpus])
    assert report.files_read == 1 and report.files_unchanged == 4
    assert report.added == 1 and report.deleted == 1
    coll = store.collection(get_settings(), Ingestor(get_settings()).info)
    texts = coll.get(where={"source": "ja/neko_sjis.txt"})["documents"]
    assert texts == ["吾輩は犬である。名前はポチ。散歩が大好きです。"]


def test_prune_removes_documents_of_deleted_files(corpus: Path, local_model, store_mode: str) -> None:
    ingest([corpus])
    (corpus / "cosine.md").unlink()
    kept = ingest([corpus])
    assert kept.deleted == 0
    pruned = ingest([corpus], prune=True)
    assert pruned.deleted == 2
    coll = store.collection(get_settings(), Ingestor(get_settings()).info)
    assert coll.get(where={"source": "cosine.md"})["ids"] == []
    records = Manifest(get_settings(), coll.name).all()
    assert all(r.done for r in records) and sum(r.chunks for r in records) == coll.count()


def test_bad_file_among_good_ones(corpus: Path, local_model, capsys) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 20)
    code, data = run_cli(capsys, "ingest", str(corpus))
    assert code == 2
    reasons = {Path(f["path"]).name: f["reason"] for f in data["files"]["failed"]}
    assert set(reasons) == {"broken.pdf", "empty.txt", "binary.txt"}
    assert "PDF" in reasons["broken.pdf"]
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert data["files"]["read"] == 5
    assert data["chunks"]["added"] >= 5
    assert data["embedding"] == {"provider": "local", "model": "use-multilingual-v3", "dims": 512}


def test_cli_search_stats_delete_reset(corpus: Path, local_model, capsys) -> None:
    code, data = run_cli(capsys, "ingest", str(corpus))
    assert code == 0
    code, found = run_cli(capsys, "search", "猫の名前は何ですか", "-k", "2", "--mode", "vector")
    assert code == 0
    assert found["hits"][0]["source"] == "ja/neko_sjis.txt"
    assert [h["rank"] for h in found["hits"]] == [1, 2]
    assert found["hits"][0]["score"] >= found["hits"][1]["score"]
    code, stats = run_cli(capsys, "stats")
    (coll,) = stats["collections"]
    assert coll["dims"] == 512 and coll["count"] == data["chunks"]["added"]
    code, deleted = run_cli(capsys, "delete", "ja/neko_sjis.txt")
    assert code == 0 and deleted["deleted"] == 1
    code, stats = run_cli(capsys, "stats")
    assert stats["collections"][0]["count"] == data["chunks"]["added"] - 1
    assert main(["reset"]) == 1  # without --yes
    capsys.readouterr()
    code, gone = run_cli(capsys, "reset", "--yes")
    assert code == 0 and gone["deleted_collections"] == [coll["name"]]
    code, err = run_cli(capsys, "search", "猫")
    assert code == 1 and "rag ingest" in err["error"]


def test_openai_provider_through_fake_server_with_one_429(corpus: Path, openai_env, capsys) -> None:
    openai_env.fail_next(429, times=1, endpoint="embeddings")
    code, data = run_cli(capsys, "ingest", str(corpus))
    assert code == 0
    assert data["embedding"] == {"provider": "openai", "model": "text-embedding-3-small", "dims": 1536}
    calls = openai_env.embedding_calls()
    assert len(calls) == 2  # the 429, then the retried request
    assert calls[-1].json["model"] == "text-embedding-3-small"
    code, found = run_cli(capsys, "search", "吾輩は猫である", "-k", "1", "--mode", "vector")
    assert found["hits"][0]["source"] == "ja/neko_sjis.txt"
    vector = Searcher(get_settings()).search("猫", k=1, mode="vector").hits[0].vector
    assert len(vector) == 1536


def test_switching_provider_uses_a_second_collection(corpus: Path, local_model, fake_openai,
                                                     monkeypatch, capsys) -> None:
    code, local = run_cli(capsys, "ingest", str(corpus))
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    get_settings.cache_clear()
    code, remote = run_cli(capsys, "ingest", str(corpus))
    assert remote["chunks"]["added"] == local["chunks"]["added"]  # nothing shared, nothing skipped
    code, stats = run_cli(capsys, "stats")
    dims = {c["name"]: c["dims"] for c in stats["collections"]}
    assert dims == {local["collection"]: 512, remote["collection"]: 1536}


def test_unchanged_chunks_of_an_edited_file_are_not_re_embedded(tmp_path: Path, openai_env) -> None:
    doc = tmp_path / "long.md"
    doc.write_text("\n\n".join(f"## Part {i}\n\n" + f"Paragraph {i} talks about topic {i}. " * 40
                               for i in range(6)), encoding="utf-8")
    ingest([doc])
    sent = sum(len(c.json["input"]) for c in openai_env.embedding_calls())
    doc.write_text(doc.read_text(encoding="utf-8") + "\n\n## Part 6\n\nA new closing paragraph.",
                   encoding="utf-8")
    report = ingest([doc])
    resent = sum(len(c.json["input"]) for c in openai_env.embedding_calls()) - sent
    assert report.added == 1
    assert resent == 1  # only the new chunk reached the provider


def test_symlink_loop_and_hidden_folders(tmp_path: Path, local_model) -> None:
    root = tmp_path / "loop"
    (root / "a").mkdir(parents=True)
    (root / "a" / "doc.txt").write_text(NEKO, encoding="utf-8")
    (root / "a" / "back").symlink_to(root)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.txt").write_text("ref: main", encoding="utf-8")
    report = ingest([root])
    assert report.files_read == 1 and report.failed == []


def test_searcher_as_a_langchain_retriever(corpus: Path, local_model) -> None:
    ingest([corpus])
    retriever = Searcher(get_settings()).as_langchain_retriever(k=2, mode="vector")
    docs = retriever.invoke("猫の名前")
    assert [d.metadata["rank"] for d in docs] == [1, 2]
    assert docs[0].metadata["source"] == "ja/neko_sjis.txt"
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]


def test_a_long_lived_searcher_survives_a_reset(corpus: Path, local_model) -> None:
    """The app keeps its Searcher; a reset retires the collection id it holds."""
    from rag.errors import EmptyStoreError
    from rag.ingest.pipeline import reset

    ingest([corpus])
    searcher = Searcher(get_settings())
    assert searcher.search("猫", k=1, mode="vector").hits
    reset(get_settings())
    with pytest.raises(EmptyStoreError, match="rag ingest"):
        searcher.search("猫", k=1, mode="vector")
    assert searcher.count() == 0
    ingest([corpus])
    assert searcher.search("猫の名前", k=1, mode="vector").hits[0].source == "ja/neko_sjis.txt"
