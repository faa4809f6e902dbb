"""What the Documents page reads and does, on real Chroma: list, text with chunk marks, delete,
re-index; the page itself is driven in Chromium by tests/test_browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import store
from rag.config import get_settings
from rag.documents import (
    delete_document,
    document_chunks,
    list_documents,
    page_text,
    reindex_document,
)
from rag.embed.providers import resolve
from rag.errors import LoadError
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher
from rag.state import Manifest, manifest_name
from tests.test_formats import cjk_font, pptx_bytes, scanned_pdf


def test_list_documents_from_the_store(corpus: Path, local_model) -> None:
    assert list_documents(get_settings()).docs == []
    (corpus / "deck.pptx").write_bytes(pptx_bytes())
    Ingestor(get_settings()).ingest([corpus])
    docs = {d.source: d for d in list_documents(get_settings()).docs}
    assert set(docs) == {"ja/neko_sjis.txt", "ja/sushi_eucjp.txt", "bom.txt", "cosine.md",
                         "tokens.html", "deck.pptx"}
    deck = docs["deck.pptx"]
    assert (deck.type, deck.pages, deck.size) == ("pptx", 3, len(pptx_bytes()))
    assert deck.chunks == 3 and deck.model == "use-multilingual-v3 (512)"
    assert deck.ingested_at is not None and deck.flags == []
    assert docs["cosine.md"].pages is None and docs["cosine.md"].type == "md"
    assert sum(d.chunks for d in docs.values()) == Searcher(get_settings()).count()


def test_text_is_rebuilt_once_with_every_chunk_marked(tmp_path: Path, local_model, monkeypatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_SIZE", "40")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "10")
    get_settings.cache_clear()
    text = "".join(f"第{i}文：埋め込みは文の意味を数値ベクトルで表す方法です。" for i in range(1, 13))
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    Ingestor(get_settings()).ingest([path])
    chunks = document_chunks(get_settings(), str(path))
    assert len(chunks) > 3 and [c.chunk for c in chunks] == list(range(len(chunks)))
    pieces = page_text(chunks)
    assert [n for n, _ in pieces] == [c.chunk for c in chunks]  # every boundary is marked
    assert "".join(p for _, p in pieces) == text  # overlaps not repeated, nothing lost
    for (_, piece), chunk in zip(pieces, chunks, strict=True):
        assert chunk.text.endswith(piece) and piece  # each mark sits where its new text begins


def test_flagged_pages_are_listed(tmp_path: Path, local_model, monkeypatch) -> None:
    cjk_font()  # found while fc-match is still on PATH
    monkeypatch.setenv("PATH", "/nonexistent")  # no tesseract: the scanned page stays empty
    from rag.ingest.formats import ocr

    ocr.status.cache_clear()
    try:
        path = tmp_path / "mixed.pdf"
        path.write_bytes(scanned_pdf(["猫"], text_first_page="Extracted as (cid:12)(cid:13)(cid:14) by a font without a map"))
        Ingestor(get_settings()).ingest([path])
    finally:
        ocr.status.cache_clear()
    (doc,) = list_documents(get_settings()).docs
    assert doc.pages == 2
    assert any(f.startswith("page 1: ") and "(cid:" in f for f in doc.flags), doc.flags
    assert "page 2: no text layer (scanned image?)" in doc.flags
    assert Manifest(get_settings(), resolve(get_settings()).collection_name).get(str(path)).flags \
        == "\n".join(doc.flags)  # written at ingest
    _strip_descriptions(get_settings())
    (old,) = list_documents(get_settings()).docs  # a record from before: derived from its chunks
    assert (old.type, old.pages, old.flags) == ("pdf", 2, doc.flags)


def test_delete_and_reindex_keep_the_source_name(corpus: Path, local_model, monkeypatch) -> None:
    Ingestor(get_settings()).ingest([corpus])
    docs = {d.source: d for d in list_documents(get_settings()).docs}
    neko = docs["ja/neko_sjis.txt"]
    before = Searcher(get_settings()).count()
    monkeypatch.setenv("RAG_CHUNK_SIZE", "20")  # new settings: re-index must re-chunk
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "5")
    get_settings.cache_clear()
    report = reindex_document(get_settings(), neko)
    assert report.files_read == 1 and report.added > 1 and report.failed == []
    after = {d.source: d for d in list_documents(get_settings()).docs}
    assert set(after) == set(docs)  # still "ja/neko_sjis.txt", not "neko_sjis.txt"
    assert after["ja/neko_sjis.txt"].chunks == report.added
    assert delete_document(get_settings(), neko.path) == report.added
    assert "ja/neko_sjis.txt" not in {d.source for d in list_documents(get_settings()).docs}
    assert Searcher(get_settings()).count() == before - 1
    Path(docs["bom.txt"].path).unlink()
    with pytest.raises(LoadError, match="no longer at .* Upload it again"):
        reindex_document(get_settings(), docs["bom.txt"])


def _strip_descriptions(settings) -> int:
    """Make the store's file records look as an older version wrote them: no type, pages, flags.
    (Chroma merges metadata on update; a key set to None is removed.)"""
    records = store.client(settings).get_collection(manifest_name(resolve(settings).collection_name))
    ids = records.get(where={"kind": "file"}, include=[])["ids"]
    records.update(ids=ids, metadatas=[{"type": None, "pages": None, "flags": None}] * len(ids))
    Manifest(settings, resolve(settings).collection_name).bump()  # a new version: caches refresh
    return len(ids)


def _rows(settings) -> dict[str, tuple]:
    return {d.source: (d.path, d.type, d.chunks, d.pages, d.size, d.flags, d.ingested_at is not None)
            for d in list_documents(settings).docs}


def test_the_list_reads_file_records_not_chunks(corpus: Path, local_model) -> None:
    (corpus / "deck.pptx").write_bytes(pptx_bytes())
    Ingestor(get_settings()).ingest([corpus])
    settings = get_settings()
    rows = _rows(settings)
    records = Manifest(settings, resolve(settings).collection_name)
    deck = records.get(str(corpus / "deck.pptx"))
    assert deck is not None and (deck.type, deck.pages, deck.flags, deck.chunks) == ("pptx", 3, "", 3)
    # the chunks' metadata is not what the list reads: wipe it, the list stays whole
    chunks = store.collection(settings, resolve(settings))
    ids = chunks.get(include=[])["ids"]
    chunks.update(ids=ids, metadatas=[{"path": None, "type": None, "pages": None, "source": None}] * len(ids))
    records.bump()
    assert _rows(settings) == rows


def test_old_records_are_listed_from_their_chunks(corpus: Path, local_model) -> None:
    (corpus / "deck.pptx").write_bytes(pptx_bytes())
    Ingestor(get_settings()).ingest([corpus])
    settings = get_settings()
    new = _rows(settings)
    assert _strip_descriptions(settings) == 6
    assert not any(r.described for r in Manifest(settings, resolve(settings).collection_name).all())
    assert _rows(settings) == new
    assert new["deck.pptx"][1:4] == ("pptx", 3, 3) and new["cosine.md"][1] == "md"
    # a re-ingest of a changed file writes its record with the description again
    (corpus / "cosine.md").write_text("Cosine similarity. " * 400, encoding="utf-8")
    Ingestor(settings).ingest([corpus])
    cosine = Manifest(settings, resolve(settings).collection_name).get(str(corpus / "cosine.md"))
    assert cosine is not None and cosine.described and cosine.type == "md" and cosine.chunks > 1
    after = _rows(settings)
    assert after["cosine.md"][2] == cosine.chunks and after["deck.pptx"] == new["deck.pptx"]


def test_re_ingest_and_delete_move_the_list(corpus: Path, local_model, monkeypatch) -> None:
    Ingestor(get_settings()).ingest([corpus])
    before = list_documents(get_settings())
    assert before.total == 5 and before.complete and len(before.docs) == 5
    monkeypatch.setenv("RAG_CHUNK_SIZE", "20")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "5")
    get_settings.cache_clear()
    report = Ingestor(get_settings()).ingest([corpus])
    after = {d.source: d for d in list_documents(get_settings()).docs}
    assert sum(d.chunks for d in after.values()) == report.added + report.skipped == Searcher(get_settings()).count()
    delete_document(get_settings(), after["bom.txt"].path)
    gone = list_documents(get_settings())
    assert gone.total == 4 and "bom.txt" not in {d.source for d in gone.docs}


def test_a_large_store_lists_a_bounded_part_and_filters_in_the_store(corpus: Path, local_model) -> None:
    Ingestor(get_settings()).ingest([corpus])
    part = list_documents(get_settings(), limit=2)
    assert part.total == 5 and len(part.docs) == 2 and not part.complete
    found = list_documents(get_settings(), contains="sushi", limit=2)
    assert [d.source for d in found.docs] == ["ja/sushi_eucjp.txt"] and found.complete and found.store_filter
    assert found.docs[0].type == "txt" and found.docs[0].chunks >= 1
    assert list_documents(get_settings(), contains="SUSHI", limit=2).docs == []  # the store's filter: exact case
    assert [d.source for d in list_documents(get_settings(), contains="SUSHI").docs] == ["ja/sushi_eucjp.txt"]
