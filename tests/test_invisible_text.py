"""Text with no visible character is empty: it never becomes chunks, and it is not a question.

A file of 100,000 zero-width spaces used to pass every "empty" check and become 400 invisible
chunks that topped the hybrid results for "hello". Real Chroma (embedded and server), the real model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.embed.providers import resolve
from rag.ingest.pipeline import Ingestor
from rag.ingest.uploads import ingest_uploads
from rag.retrieve.searcher import Searcher
from rag.visible import has_visible_text

INVISIBLE = {
    "zwsp.txt": "\u200b" * 100_000,
    "joiners.md": "\u200c\u200d\u2060\ufeff" * 5_000 + "\n\n" + "\u00ad\u034f" * 2_000,
    "bidi.txt": "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f" * 1_000,
    "fillers.txt": "\u3164\u115f\u1160\uffa0\u2800\u180e" * 3_000 + "\u3000 \t\n" * 100,
    "marks.txt": "\u0301\u0308\ufe0f\ufe0e\U000e0041" * 2_000,
    "page.html": "<html><body><p>" + "\u200b" * 5_000 + "</p><p>\u2060</p></body></html>",
}


def test_visible_text() -> None:
    for text in INVISIBLE.values():
        assert not has_visible_text(text.replace("<html><body><p>", "").replace("</p><p>", "")
                                    .replace("</p></body></html>", ""))
    for text in ("a", "猫", "。", "0", "🙂", "\u200bx\u200b", "ー", "\u3000あ"):
        assert has_visible_text(text), text


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in INVISIBLE.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "hello.md").write_text("# Greetings\n\nHello, and welcome to the vector lab.\n",
                                   encoding="utf-8")
    (root / "padded.txt").write_text(
        "寿司は酢飯に魚介類を合わせた料理です。" + "\u200b" * 60_000 + "\n\n天ぷらは衣をつけて揚げます。",
        encoding="utf-8")
    return root


def _stored_texts() -> list[str]:
    settings = get_settings()
    return store.collection(settings, resolve(settings)).get(include=["documents"])["documents"]


def test_invisible_files_are_empty_and_named(folder: Path, local_model, store_mode: str, capsys) -> None:
    code = main(["ingest", str(folder), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 2
    failed = {Path(f["path"]).name: f["reason"] for f in data["files"]["failed"]}
    assert set(failed) == set(INVISIBLE)
    assert all("no visible text" in reason for reason in failed.values())
    texts = _stored_texts()
    assert texts and all(has_visible_text(t) for t in texts)
    assert len(texts) <= 4  # hello.md and padded.txt's two dishes, not hundreds of blanks
    for mode in ("vector", "bm25", "hybrid"):
        hits = Searcher(get_settings()).search("hello", k=5, mode=mode).hits
        assert all(has_visible_text(h.text) for h in hits), mode
        assert hits[0].source == "hello.md", mode


def test_an_invisible_upload_is_refused_with_its_reason(local_model) -> None:
    report, rejected = ingest_uploads(get_settings(), [("blank.md", ("\u200b" * 100_000).encode())])
    assert rejected == [] and report is not None
    assert [reason for _, reason in report.failed] == [
        "no visible text in the file (only whitespace or invisible characters)"]
    assert report.added == 0


@pytest.mark.parametrize("question", ["", "   ", "\u200b\u200b", "\u3000\ufeff\u2060"])
def test_an_invisible_question_is_an_empty_question(folder: Path, local_model, question: str,
                                                    capsys) -> None:
    Ingestor(get_settings()).ingest([folder])
    for command in ("search", "ask"):
        assert main([command, question, "--json"]) == 1
        data = json.loads(capsys.readouterr().out)
        assert data["kind"] == "QueryError" and "empty" in data["error"]
