"""Uploaded files: the browser's file name is hostile until proven otherwise.

Whatever the name, the file lands directly in `<data dir>/uploads/` or is refused with a reason;
nothing is ever written anywhere else, and an accepted upload is ingested like any other file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import store
from rag.config import get_settings
from rag.embed.providers import resolve
from rag.ingest.uploads import (
    MAX_NAME_CHARS,
    ingest_uploads,
    sanitize_name,
    save_uploads,
    uploads_dir,
)

HOSTILE_NAMES = {
    "../../etc/passwd.txt": "passwd.txt",
    "/etc/shadow.md": "shadow.md",
    "a/b.md": "b.md",
    "..\\..\\Windows\\win.ini.txt": "win.ini.txt",
    "C:\\Users\\me\\notes.md": "notes.md",
    "nul\x00byte.txt": "nulbyte.txt",
    "new\nline.txt": "newline.txt",
    "tab\tand\rreturn.md": "tabandreturn.md",
    ".hidden.md": "hidden.md",
    "REPORT.PDF": "REPORT.pdf",
    "日本語 メモ.md": "日本語_メモ.md",
    "semi;colon $(rm -rf).txt": "semi_colon_rm_-rf.txt",
    "x" * 400 + ".md": "x" * (MAX_NAME_CHARS - 3) + ".md",
}


def files_outside(root: Path, data_dir: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and data_dir not in p.parents}


@pytest.mark.parametrize(("name", "safe"), list(HOSTILE_NAMES.items()))
def test_hostile_names_are_sanitised(name: str, safe: str) -> None:
    assert sanitize_name(name) == safe


def test_every_upload_stays_in_the_uploads_folder(tmp_path: Path, settings) -> None:
    before = files_outside(tmp_path, settings.data_dir)
    saved, rejected = save_uploads(settings, [(n, b"text about vectors") for n in HOSTILE_NAMES])
    assert rejected == []
    folder = uploads_dir(settings).resolve()
    assert folder.parent == settings.data_dir.resolve()
    assert sorted(p.name for p in saved) == sorted(HOSTILE_NAMES.values())
    for path in saved:
        assert path.resolve().parent == folder
        assert "\x00" not in path.name and "\n" not in path.name and not path.name.startswith(".")
    assert sorted(p.name for p in folder.iterdir()) == sorted(HOSTILE_NAMES.values())
    assert files_outside(tmp_path, settings.data_dir) == before


def test_disallowed_types_and_oversize_are_refused(settings, monkeypatch) -> None:
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.001")  # 1,048 bytes
    get_settings.cache_clear()
    settings = get_settings()
    cap = settings.max_file_bytes
    saved, rejected = save_uploads(settings, [
        ("tool.exe", b"MZ\x90\x00"), ("evil.txt.exe", b"MZ"), ("script.sh", b"#!/bin/sh"),
        ("noext", b"text"), ("page.svg", b"<svg/>"), ("..md", b"x"), ("..", b"x"), ("", b"x"),
        ("big.md", b"a" * (cap + 1)), ("exactly.md", b"a" * cap),
    ])
    reasons = {r.name: r.reason for r in rejected}
    assert set(reasons) == {"tool.exe", "evil.txt.exe", "script.sh", "noext", "page.svg", "..md", "..", "",
                            "big.md"}
    for name in ("tool.exe", "evil.txt.exe", "script.sh", "page.svg"):
        assert reasons[name].startswith("unsupported type ."), reasons[name]
        assert ".md" in reasons[name] and ".pdf" in reasons[name]  # says what is allowed
    for name in ("noext", "..md", "..", ""):  # nothing left of the name that says what it is
        assert reasons[name].startswith("unsupported type (none)"), name
    assert "RAG_MAX_FILE_MB" in reasons["big.md"]
    assert [p.name for p in saved] == ["exactly.md"]
    assert sorted(p.name for p in uploads_dir(settings).iterdir()) == ["exactly.md"]


def test_symlink_planted_in_the_uploads_folder_is_not_followed(tmp_path: Path, settings) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("must not change", encoding="utf-8")
    folder = uploads_dir(settings)
    folder.mkdir(parents=True)
    (folder / "planted.txt").symlink_to(outside)
    saved, rejected = save_uploads(settings, [("planted.txt", b"overwritten!")])
    assert saved == [] and rejected[0].reason == "unsafe file name"
    assert outside.read_text(encoding="utf-8") == "must not change"


def test_hostile_named_upload_is_ingested_and_searchable(tmp_path: Path, settings, local_model) -> None:
    before = files_outside(tmp_path, settings.data_dir)
    report, rejected = ingest_uploads(settings, [
        ("../../etc/寿司.txt", "寿司は酢飯に魚介類を合わせた日本の料理です。".encode("cp932")),
        ("run.exe", b"MZ"),
    ])
    assert report is not None and report.files_read == 1 and report.failed == []
    assert [r.name for r in rejected] == ["run.exe"]
    coll = store.collection(settings, resolve(settings))
    got = coll.get(include=["metadatas", "documents"])
    assert [m["source"] for m in got["metadatas"]] == ["寿司.txt"]
    assert got["documents"] == ["寿司は酢飯に魚介類を合わせた日本の料理です。"]
    assert Path(got["metadatas"][0]["path"]).parent == uploads_dir(settings).absolute()
    assert files_outside(tmp_path, settings.data_dir) == before
    assert not Path("/etc/寿司.txt").exists()


def _sources_and_texts(settings) -> list[tuple[str, str]]:
    got = store.collection(settings, resolve(settings)).get(include=["metadatas", "documents"])
    return sorted((m["source"], d) for m, d in zip(got["metadatas"], got["documents"], strict=True))


def test_names_that_sanitise_alike_stay_two_documents(settings, local_model) -> None:
    first, _ = ingest_uploads(settings, [("議事録 (1).md", "# 第1回\n\n予算を承認した。".encode())])
    second, _ = ingest_uploads(settings, [("議事録_1_.md", "# 第2回\n\n人事を決めた。".encode())])
    assert first is not None and second is not None
    assert second.deleted == 0 and second.added == 1
    assert _sources_and_texts(settings) == [
        ("議事録_1-2.md", "# 第2回\n\n人事を決めた。"), ("議事録_1.md", "# 第1回\n\n予算を承認した。")]


def test_two_files_of_one_name_in_one_upload_are_both_kept(settings, local_model) -> None:
    report, _ = ingest_uploads(settings, [
        ("README.md", b"# Alpha\n\nThe alpha project ships in May."),
        ("README.md", b"# Beta\n\nThe beta project ships in June."),
        ("README.md", b"# Beta\n\nThe beta project ships in June."),  # the very same file again
    ])
    assert report is not None and report.deleted == 0
    assert [s for s, _ in _sources_and_texts(settings)] == ["README-2.md", "README.md"]


def test_the_same_name_again_updates_its_document(settings, local_model) -> None:
    ingest_uploads(settings, [("議事録 (1).md", "予算を承認した。".encode()),
                              ("メモ.md", "別の文書。".encode())])
    report, _ = ingest_uploads(settings, [("議事録 (1).md", "予算を否決した。".encode())])
    assert report is not None and report.deleted == 1
    assert _sources_and_texts(settings) == [("メモ.md", "別の文書。"), ("議事録_1.md", "予算を否決した。")]


def test_uploads_from_before_the_names_file_keep_their_identity(settings, local_model) -> None:
    folder = uploads_dir(settings)
    folder.mkdir(parents=True)
    (folder / "notes.md").write_text("older upload", encoding="utf-8")  # saved by an older version
    saved, _ = save_uploads(settings, [("notes!.md", b"a different file"), ("notes.md", b"new version")])
    assert [p.name for p in saved] == ["notes-2.md", "notes.md"]
    assert (folder / "notes.md").read_bytes() == b"new version"
