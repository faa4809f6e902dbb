"""The app's store watcher: on a shared `chroma run` server, another machine's write is indexed
between questions, so the next question does not pay for the refresh, and the debug panel's
sample of a large collection is read before a click needs it.

The writer is a `rag` process with its own data dir ("machine A"); the reader is this process's
long-lived `Searcher`, as the app keeps it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.lens import collection
from rag.retrieve import bm25
from rag.retrieve.searcher import Searcher
from rag.retrieve.watch import Watcher, watch
from rag.state import read_version
from tests.fake_openai import FakeOpenAI
from tests.test_shared_store import RARE, cli, docs, env_for


def current(app: Searcher) -> bm25.BM25Index | None:
    """The index this process holds in memory, if it is at the store's version (no refresh)."""
    held = bm25.cached(app.settings, app.collection)
    return held if held is not None and held.version == read_version(app.settings, app.collection.name) else None


def test_another_machines_write_is_indexed_before_the_next_question(tmp_path: Path, shared,
                                                                     openai_env: FakeOpenAI) -> None:
    root = docs(tmp_path / "docs")
    a = env_for(tmp_path / "machine-a", openai_env, shared)
    assert cli(a, "ingest", str(root))[0] == 0
    app = Searcher(get_settings())
    watcher = Watcher(app)
    assert watcher.check() and current(app) is not None
    assert not watcher.check()  # nothing moved: nothing read again

    (root / "rare.md").write_text(RARE, encoding="utf-8")
    assert cli(a, "ingest", str(root))[0] == 0
    assert current(app) is None  # the write moved the version: a question now would refresh first
    assert watcher.check()
    ready = current(app)
    assert ready is not None
    hits = app.search("quokkafrobnicator flux capacitor", k=1, mode="bm25").hits
    assert hits[0].source == "rare.md"
    assert bm25.cached(app.settings, app.collection) is ready  # the question refreshed nothing

    code, _ = cli(a, "delete", "rare.md")
    assert code == 0 and watcher.check()
    hits = app.search("quokkafrobnicator flux capacitor", k=3, mode="bm25").hits
    assert "rare.md" not in [h.source for h in hits]
    assert bm25.cached(app.settings, app.collection) is current(app)


def test_the_watcher_thread_runs_only_against_a_server(tmp_path: Path, shared, openai_env: FakeOpenAI,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = docs(tmp_path / "docs")
    a = env_for(tmp_path / "machine-a", openai_env, shared)
    assert cli(a, "ingest", str(root))[0] == 0
    app = Searcher(get_settings())
    watcher = watch(app)
    assert watcher is not None
    try:
        watcher.every_s = 0.2
        deadline = time.monotonic() + 60
        while watcher.refreshes < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        (root / "rare.md").write_text(RARE, encoding="utf-8")
        assert cli(a, "ingest", str(root))[0] == 0
        while current(app) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert current(app) is not None, "the watcher did not index A's write within a minute"
    finally:
        watcher.stop()

    monkeypatch.delenv("CHROMA_HOST")
    get_settings.cache_clear()
    assert watch(Searcher(get_settings())) is None  # embedded: the search path reopens the store itself


def test_a_large_collections_sample_is_read_by_the_watcher_not_the_click(
        tmp_path: Path, shared, openai_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    # "large" here: more chunks than a view loads, with the cap shrunk to a few chunks
    monkeypatch.setattr(collection, "SAMPLE_CAP", 2)
    monkeypatch.setattr(collection, "SAMPLE_FLOATS", 2)
    root = docs(tmp_path / "docs")
    a = env_for(tmp_path / "machine-a", openai_env, shared)
    assert cli(a, "ingest", str(root))[0] == 0
    app = Searcher(get_settings())
    settings, info, coll = app.settings, app.info, app.collection
    assert collection.is_sampled(settings, coll)
    watcher = Watcher(app)
    watcher.check()
    first = collection.vectors_for(settings, info, coll, watched=True)
    assert first.sampled and collection.vectors_for(settings, info, coll, watched=True) is first

    (root / "rare.md").write_text(RARE, encoding="utf-8")
    assert cli(a, "ingest", str(root))[0] == 0
    # until the watcher has read the next sample, the panel keeps the newest one (no read on click)
    assert collection.vectors_for(settings, info, coll, watched=True) is first
    # a caller without a watcher (the CLI) reads the store's state now
    fresh = collection.vectors_for(settings, info, coll)
    assert fresh is not first and fresh.total == first.total + 1
    assert watcher.check()
    after = collection.vectors_for(settings, info, coll, watched=True)
    assert after.key == collection.collection_key(settings, info, coll) and after.total == first.total + 1
