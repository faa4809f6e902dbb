"""One identity per file: a folder named two ways or through a symlink is stored once, symlinks
out of the folder are not followed, and file names that are not UTF-8 are ingested readably.

Real Chroma (embedded and server), the real model, `rag` run in-process and as a real process
from another working directory (relative paths are resolved against the process's cwd).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import get_settings
from rag.ingest.loaders import FoundFile
from rag.ingest.pipeline import Ingestor, IngestReport
from rag.retrieve.searcher import Searcher
from tests.conftest import REPO

SJIS_NAME = "議事録.txt".encode("cp932")


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "en"
    root.mkdir(parents=True)
    (root / "cats.md").write_text("# Cats\n\nCats sleep sixteen hours a day.\n", encoding="utf-8")
    (root / "sushi.txt").write_text("寿司は酢飯に魚介類を合わせた料理です。", encoding="utf-8")
    return root


def _chunk_count() -> int:
    return Searcher(get_settings()).count()


def test_two_spellings_and_a_symlink_are_one_document(tmp_path: Path, local_model, store_mode: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path)
    (tmp_path / "link").symlink_to(root)
    (tmp_path / "sibling").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["ingest", "en"]) == 0
    stored = _chunk_count()
    monkeypatch.chdir(tmp_path / "sibling")
    assert main(["ingest", "../work/en"]) == 0
    assert main(["ingest", "../link/", "--json"]) == 0
    assert main(["ingest", str(tmp_path / "work" / "." / "en" / "cats.md")]) == 0
    assert _chunk_count() == stored
    hits = Searcher(get_settings()).search("How long do cats sleep?", k=3, mode="hybrid").hits
    assert [h.text for h in hits].count(hits[0].text) == 1
    assert hits[0].source == "cats.md"


def test_deleting_by_another_spelling_finds_the_document(tmp_path: Path, local_model,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    root = _folder(tmp_path)
    (tmp_path / "link").symlink_to(root)
    assert main(["ingest", str(root)]) == 0
    before = _chunk_count()
    (tmp_path / "sibling").mkdir()
    monkeypatch.chdir(tmp_path / "sibling")
    assert main(["delete", "../link/cats.md", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] >= 1
    assert _chunk_count() < before


def test_symlinks_leaving_the_folder_are_named_and_not_followed(tmp_path: Path, local_model) -> None:
    root = _folder(tmp_path)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.md").write_text("The vault code is 4471.", encoding="utf-8")
    (root / "secret-link.md").symlink_to(outside / "secret.md")
    (root / "private-dir").symlink_to(outside)
    (root / "inner").symlink_to(root / "cats.md")  # inside the folder: the same file, once
    report = Ingestor(get_settings()).ingest([root])
    reasons = dict(report.failed)
    assert set(reasons) == {str(root / "secret-link.md"), str(root / "private-dir")}
    assert all("outside" in r and "not followed" in r for r in reasons.values())
    sources = {h.source for h in Searcher(get_settings()).search("vault code 4471", k=5).hits}
    assert sources == {"cats.md", "sushi.txt"}
    # the target itself, ingested directly, is stored as that file
    Ingestor(get_settings()).ingest([outside])
    assert Searcher(get_settings()).search("vault code 4471", k=1).hits[0].source == "secret.md"


def test_store_written_before_paths_were_resolved_loses_its_duplicates(tmp_path: Path, local_model,
                                                                       capsys) -> None:
    root = _folder(tmp_path)
    (tmp_path / "sibling").mkdir()
    ingestor = Ingestor(get_settings())
    ingestor.ingest([root])
    single = _chunk_count()
    # what an older version added for `rag ingest ../work/en` run from the sibling folder
    unresolved = tmp_path / "sibling" / ".." / "work" / "en"
    old = [FoundFile(unresolved / name, unresolved) for name in ("cats.md", "sushi.txt")]
    ingestor._run(old, IngestReport(ingestor.info, ingestor.info.collection_name), None)
    assert _chunk_count() == 2 * single
    assert main(["doctor", "--json"]) == 1  # doctor sees the two spellings
    check = next(c for c in json.loads(capsys.readouterr().out)["checks"]
                 if c["name"] == "one identity per file")
    assert not check["ok"] and "rag ingest" in check["fix"]
    report = Ingestor(get_settings()).ingest([root])
    assert report.deleted == single and report.added == 0
    assert _chunk_count() == single
    assert {r.path for r in ingestor.manifest.all()} == {str(root / "cats.md"), str(root / "sushi.txt")}
    main(["doctor", "--json"])
    check = next(c for c in json.loads(capsys.readouterr().out)["checks"]
                 if c["name"] == "one identity per file")
    assert check["ok"]


def _sjis_folder(tmp_path: Path) -> Path:
    root = _folder(tmp_path)
    raw = os.fsencode(root)
    with open(raw + b"/" + SJIS_NAME, "wb") as handle:
        handle.write("会議の議事録：来期の予算を承認した。".encode())
    with open(raw + b"/\xff\xfe-notes.md", "wb") as handle:
        handle.write(b"# Notes\n\nA note whose name is not text in any encoding.\n")
    with open(raw + b"/\x83\x65\x83\x58\x83\x67.rtf", "wb") as handle:  # テスト.rtf, unsupported
        handle.write(b"a,b\n")
    return root


def test_names_that_are_not_utf8_are_ingested_under_readable_names(tmp_path: Path, local_model,
                                                                   store_mode: str, capsys) -> None:
    root = _sjis_folder(tmp_path)
    code = main(["ingest", str(root), "--json"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 0, out
    assert data["files"]["read"] == 4 and data["files"]["unsupported"] == 1
    hits = Searcher(get_settings()).search("議事録 予算", k=5, mode="bm25").hits
    assert hits[0].source == "議事録.txt"
    assert "\\xff\\xfe-notes.md" in {h.source for h in Searcher(get_settings()).search(
        "a note whose name is not text", k=5, mode="bm25").hits}
    again = json.loads((main(["ingest", str(root), "--json"]), capsys.readouterr().out)[1])
    assert again["files"]["unchanged"] == 4 and again["chunks"]["added"] == 0
    assert main(["ingest", str(root), "--prune", "--json"]) == 0  # present files are not pruned
    assert json.loads(capsys.readouterr().out)["chunks"]["deleted"] == 0
    os.remove(os.fsencode(root) + b"/" + SJIS_NAME)
    assert main(["ingest", str(root), "--prune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"]["deleted"] == 1


def test_non_utf8_names_in_a_real_process(tmp_path: Path, local_model) -> None:
    root = _sjis_folder(tmp_path)
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    for as_json in (["--json"], []):
        proc = subprocess.run([sys.executable, "-m", "rag", "ingest", os.fsencode(root), *as_json],
                              capture_output=True, env=env, cwd=tmp_path, timeout=300)
        assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
        assert proc.returncode == 2  # the broken PDF failed, everything else was stored
    assert "broken.pdf" in proc.stderr.decode()
