"""The app and the CLI on one embedded store: a long-lived `Searcher` (what the app keeps) sees
the CLI's ingests, deletes and resets at its next question, in every mode, with no error and no
restart; what this process writes (an upload) a CLI search sees at once.

The CLI runs as real `rag` processes on the same data dir; this process holds its embedded
Chroma client open the whole time, as a running app does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher
from tests.conftest import REPO

MODES = ("vector", "bm25", "hybrid")
RARE = "The quokkafrobnicator calibrates the flux capacitor every Tuesday morning."


def cli(*argv: str) -> tuple[int, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "rag", *argv, "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"rag {' '.join(argv)} printed no JSON:\n{done.stdout}\n{done.stderr}") from None


def hits(searcher: Searcher, query: str, mode: str, k: int = 3) -> list[str]:
    found = searcher.search(query, k=k, mode=mode).hits
    for hit in found:
        assert hit.text and hit.source != "?", f"ghost hit in {mode}: {hit}"
    return [h.source for h in found]


def test_a_long_lived_searcher_follows_cli_ingest_delete_and_reset(corpus: Path, local_model) -> None:
    assert not Ingestor(get_settings()).ingest([corpus]).failed
    app = Searcher(get_settings())
    for mode in MODES:  # every index loaded in this process, as after a few questions in the app
        assert hits(app, "猫の名前", mode)

    (corpus / "rare.md").write_text(RARE, encoding="utf-8")
    code, added = cli("ingest", str(corpus))
    assert code == 0 and added["files"]["read"] == 1
    for mode in MODES:
        assert hits(app, "quokkafrobnicator flux capacitor", mode)[0] == "rare.md", mode

    code, deleted = cli("delete", "rare.md")
    assert code == 0 and deleted["deleted"] == 1
    for mode in MODES:
        assert "rare.md" not in hits(app, "quokkafrobnicator flux capacitor", mode, k=10), mode

    for _ in range(2):  # "one run of two" failed before: do it twice
        assert cli("reset", "--yes")[0] == 0
        assert cli("ingest", str(corpus))[0] == 0
        for mode in MODES:
            assert hits(app, "quokkafrobnicator flux capacitor", mode)[0] == "rare.md", mode
            assert hits(app, "猫の名前", mode), mode
    assert app.count() == cli("stats")[1]["collections"][0]["count"]


def test_what_this_process_writes_a_cli_search_sees_at_once(corpus: Path, local_model) -> None:
    app = Searcher(get_settings())
    uploader = Ingestor(get_settings())
    assert not uploader.ingest([corpus]).failed
    assert hits(app, "猫の名前", "vector")
    (corpus / "rare.md").write_text(RARE, encoding="utf-8")
    assert uploader.ingest([corpus / "rare.md"]).added == 1  # this process keeps its client open
    for mode in MODES:
        code, found = cli("search", "quokkafrobnicator flux capacitor", "--mode", mode, "-k", "1")
        assert code == 0 and found["hits"][0]["source"] == "rare.md", (mode, found)
    assert hits(app, "quokkafrobnicator flux capacitor", "hybrid")[0] == "rare.md"


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_an_app_upload_after_a_cli_ingest_keeps_both(corpus: Path, local_model, mode: str) -> None:
    """The app writes after the CLI did: its embedded index must be reloaded first, or its next
    write would be made on a view that lacks the CLI's chunks."""
    uploader = Ingestor(get_settings())
    assert not uploader.ingest([corpus]).failed
    app = Searcher(get_settings())
    assert hits(app, "猫の名前", mode)
    cli_dir = corpus.parent / "from-cli"
    cli_dir.mkdir()
    (cli_dir / "rare.md").write_text(RARE, encoding="utf-8")
    assert cli("ingest", str(cli_dir))[0] == 0
    upload = corpus.parent / "upload.md"
    upload.write_text("Zorblatt widgets are polished with beeswax.", encoding="utf-8")
    assert uploader.ingest([upload]).added == 1
    assert hits(app, "quokkafrobnicator flux capacitor", mode)[0] == "rare.md"
    assert hits(app, "zorblatt widgets beeswax", mode)[0] == "upload.md"
    code, found = cli("search", "quokkafrobnicator flux capacitor", "--mode", "vector", "-k", "1")
    assert found["hits"][0]["source"] == "rare.md"


def _write_version_behind_our_back(version: str) -> None:
    """Put a write version into the store as `Manifest.put` does, without telling `rag.store`."""
    import time

    from rag import store
    from rag.embed.providers import resolve
    from rag.state import VERSION_ID, manifest_name

    settings = get_settings()
    coll = store.client(settings).get_collection(manifest_name(resolve(settings).collection_name))
    coll.upsert(ids=[VERSION_ID], embeddings=[[1.0]], documents=[VERSION_ID],
                metadatas=[{"kind": "version", "version": version, "at": time.time()}])


def test_a_version_this_process_is_writing_never_reopens_its_store(corpus: Path, local_model) -> None:
    """The app's question may read the version its own first-start ingest is writing before the
    writer has noted it; reopening then left the searcher on a store without the new chunks
    ("Error finding id"). Only another process's write reopens the embedded store."""
    from rag import store
    from rag.embed.providers import resolve
    from rag.state import new_version

    Ingestor(get_settings()).ingest([corpus])
    settings, name = get_settings(), resolve(get_settings()).collection_name
    store.catch_up(settings, name)
    before = store.client(settings)
    ours = new_version()
    store.will_write(ours)
    _write_version_behind_our_back(ours)
    assert store.catch_up(settings, name) == ours
    assert store.client(settings) is before  # our own write: nothing reopened
    _write_version_behind_our_back(new_version())  # as another process would
    store.catch_up(settings, name)
    assert store.client(settings) is not before  # another's write: the store is read from disk again
