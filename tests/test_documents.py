"""What the Documents page reads and does, on real Chroma: list, text with chunk marks, delete,
re-index; the page itself is driven in Chromium by tests/test_browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import get_settings
from rag.documents import (
    delete_document,
    document_chunks,
    list_documents,
    page_text,
    reindex_document,
)
from rag.errors import LoadError
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher
from tests.test_formats import cjk_font, pptx_bytes, scanned_pdf


def test_list_documents_from_the_store(corpus: Path, local_model) -> None:
    assert list_documents(get_settings()) == []
    (corpus / "deck.pptx").write_bytes(pptx_bytes())
    Ingestor(get_settings()).ingest([corpus])
    docs = {d.source: d for d in list_documents(get_settings())}
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
    (doc,) = list_documents(get_settings())
    assert doc.pages == 2
    assert any(f.startswith("page 1: ") and "(cid:" in f for f in doc.flags), doc.flags
    assert "page 2: no text layer (scanned image?)" in doc.flags


def test_delete_and_reindex_keep_the_source_name(corpus: Path, local_model, monkeypatch) -> None:
    Ingestor(get_settings()).ingest([corpus])
    docs = {d.source: d for d in list_documents(get_settings())}
    neko = docs["ja/neko_sjis.txt"]
    before = Searcher(get_settings()).count()
    monkeypatch.setenv("RAG_CHUNK_SIZE", "20")  # new settings: re-index must re-chunk
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "5")
    get_settings.cache_clear()
    report = reindex_document(get_settings(), neko)
    assert report.files_read == 1 and report.added > 1 and report.failed == []
    after = {d.source: d for d in list_documents(get_settings())}
    assert set(after) == set(docs)  # still "ja/neko_sjis.txt", not "neko_sjis.txt"
    assert after["ja/neko_sjis.txt"].chunks == report.added
    assert delete_document(get_settings(), neko.path) == report.added
    assert "ja/neko_sjis.txt" not in {d.source for d in list_documents(get_settings())}
    assert Searcher(get_settings()).count() == before - 1
    Path(docs["bom.txt"].path).unlink()
    with pytest.raises(LoadError, match="no longer at .* Upload it again"):
        reindex_document(get_settings(), docs["bom.txt"])
