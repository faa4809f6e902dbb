"""The store is the truth: two data dirs (two "machines") on one real `chroma run` server agree,
and a data dir whose store lost chunks, or was swapped, is noticed and repaired.

Every write runs in its own `rag` process against the fake OpenAI server, so the embedding
requests each process makes are counted; the reading side is either another process or a
long-lived `Searcher` in this one (what the app keeps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.embed.providers import resolve
from rag.retrieve.searcher import Searcher
from tests.conftest import COSINE_EN, NEKO, REPO, SUSHI
from tests.fake_openai import FakeOpenAI

MODES = ("vector", "bm25", "hybrid")
RARE = "The quokkafrobnicator calibrates the flux capacitor every Tuesday."


def cli(env: dict[str, str], *argv: str, timeout: float = 120) -> tuple[int, dict]:
    """`rag ARGV --json` in a process of its own, running this checkout's code."""
    done = subprocess.run([sys.executable, "-m", "rag", *argv, "--json"], env=env, capture_output=True,
                          text=True, timeout=timeout)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"rag {' '.join(argv)} printed no JSON:\n{done.stdout}\n{done.stderr}") from None


def env_for(data_dir: Path, server: FakeOpenAI, chroma: tuple[str, int] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(PYTHONPATH=str(REPO), RAG_DATA_DIR=str(data_dir), OPENAI_API_KEY=server.api_key or "",
               OPENAI_BASE_URL=server.base_url, RAG_OPENAI_MAX_RETRIES="0")
    if chroma:
        env.update(CHROMA_HOST=chroma[0], CHROMA_PORT=str(chroma[1]))
    return env


def docs(root: Path) -> Path:
    (root / "ja").mkdir(parents=True)
    (root / "ja" / "neko.txt").write_text(NEKO, encoding="utf-8")
    (root / "ja" / "sushi.txt").write_text(SUSHI, encoding="utf-8")
    (root / "cosine.md").write_text(COSINE_EN, encoding="utf-8")
    return root


def sources(env: dict[str, str], query: str, mode: str) -> list[str]:
    code, found = cli(env, "search", query, "-k", "3", "--mode", mode)
    assert code == 0, found
    for hit in found["hits"]:
        assert hit["source"] != "?" and hit["text"], f"ghost hit in {mode}: {hit}"
    return [h["source"] for h in found["hits"]]


def test_two_data_dirs_on_one_server_agree(tmp_path: Path, shared, openai_env: FakeOpenAI) -> None:
    root = docs(tmp_path / "docs")
    a = env_for(tmp_path / "machine-a", openai_env, shared)
    b = env_for(tmp_path / "machine-b", openai_env, shared)
    code, first = cli(a, "ingest", str(root))
    assert code == 0 and first["files"]["read"] == 3

    # a long-lived reader (the app on a third machine), and B's keyword index, built now
    app = Searcher(get_settings())
    assert sources(b, "酢飯", "bm25")[0] == "ja/sushi.txt"
    assert app.search("酢飯", k=1, mode="bm25").hits[0].source == "ja/sushi.txt"

    # A adds a file: B (another process, another data dir) and the app find it in every mode
    (root / "rare.md").write_text(RARE, encoding="utf-8")
    code, added = cli(a, "ingest", str(root))
    assert code == 0 and added["files"]["read"] == 1
    for mode in MODES:
        assert sources(b, "quokkafrobnicator flux capacitor", mode)[0] == "rare.md", mode
        assert app.search("quokkafrobnicator flux capacitor", k=1, mode=mode).hits[0].source == "rare.md"

    # B ingests the same folder: everything is already in the store, nothing is embedded again
    calls = len(openai_env.embedding_calls())
    code, again = cli(b, "ingest", str(root))
    assert code == 0, again
    assert again["files"]["unchanged"] == 4 and again["files"]["read"] == 0
    assert again["chunks"]["added"] == 0
    assert len(openai_env.embedding_calls()) == calls

    # B deletes it: A (whose BM25 cache on disk still holds it) and the app cite it no more
    assert "rare.md" in sources(a, "quokkafrobnicator", "bm25")
    code, deleted = cli(b, "delete", "rare.md")
    assert code == 0 and deleted["deleted"] >= 1
    for mode in MODES:
        assert "rare.md" not in sources(a, "quokkafrobnicator flux capacitor", mode), mode
        hits = app.search("quokkafrobnicator flux capacitor", k=3, mode=mode).hits
        assert "rare.md" not in [h.source for h in hits], mode
        assert all(h.text and h.source != "?" for h in hits)
    code, doctor = cli(a, "doctor")
    assert code == 0, [c for c in doctor["checks"] if not c["ok"]]


def test_a_data_dir_pointed_at_an_empty_server_ingests_everything(tmp_path: Path, shared,
                                                                  openai_env: FakeOpenAI) -> None:
    """What the README advises for several processes: move an existing data dir to a server."""
    root = docs(tmp_path / "docs")
    data_dir = tmp_path / "data"
    code, local = cli(env_for(data_dir, openai_env, None), "ingest", str(root))
    assert code == 0 and local["chunks"]["added"] > 0
    code, moved = cli(env_for(data_dir, openai_env, shared), "ingest", str(root))
    assert code == 0
    assert moved["files"]["read"] == 3 and moved["chunks"]["added"] == local["chunks"]["added"]
    assert sources(env_for(data_dir, openai_env, shared), "酢飯", "hybrid")[0] == "ja/sushi.txt"


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_a_store_that_lost_chunks_is_diagnosed_and_repaired(tmp_path: Path, where: str, request,
                                                            openai_env: FakeOpenAI) -> None:
    """The manifest promises chunks the store no longer has: doctor says so, ingest re-adds them.

    Losses made by hand with the raw Chroma client: one file's chunks, then the whole chunk
    collection (what a reset cut short after dropping it, with the old ordering, left behind).
    """
    import chromadb

    chroma = request.getfixturevalue("shared") if where == "server" else None
    root = docs(tmp_path / "docs")
    env = env_for(tmp_path / "data", openai_env, chroma)
    code, first = cli(env, "ingest", str(root))
    assert code == 0
    total = first["chunks"]["added"]
    raw = (chromadb.HttpClient(host=chroma[0], port=chroma[1]) if chroma
           else chromadb.PersistentClient(path=str(tmp_path / "data" / "chroma")))
    name = resolve(get_settings()).collection_name if chroma else first["collection"]
    raw.get_collection(name).delete(where={"source": "cosine.md"})

    code, doctor = cli(env, "doctor")
    records = next(c for c in doctor["checks"] if c["name"] == "records")
    assert code == 1 and not records["ok"] and "lost chunks" in records["detail"]
    assert "rag ingest PATH" in records["fix"]
    code, repaired = cli(env, "ingest", str(root))
    assert code == 0 and repaired["files"]["read"] == 1 and repaired["files"]["unchanged"] == 2
    assert raw.get_collection(name).count() == total
    assert sources(env, "cosine similarity distance", "bm25")[0] == "cosine.md"

    raw.delete_collection(name)
    code, doctor = cli(env, "doctor")
    assert code == 1
    code, repaired = cli(env, "ingest", str(root))
    assert code == 0 and repaired["chunks"]["added"] == total
    code, doctor = cli(env, "doctor")
    assert code == 0, [c for c in doctor["checks"] if not c["ok"]]


def test_a_lost_manifest_costs_no_embedding(tmp_path: Path, openai_env: FakeOpenAI) -> None:
    """A reset killed after the manifest went but before the chunks did: the next ingest finds
    every file unrecorded, embeds nothing it already stores, and ends equal to a clean ingest."""
    import chromadb

    root = docs(tmp_path / "docs")
    env = env_for(tmp_path / "data", openai_env, None)
    code, first = cli(env, "ingest", str(root))
    raw = chromadb.PersistentClient(path=str(tmp_path / "data" / "chroma"))
    before = sorted(raw.get_collection(first["collection"]).get(include=[])["ids"])
    raw.delete_collection("ragfiles_" + first["collection"])
    calls = len(openai_env.embedding_calls())
    code, again = cli(env, "ingest", str(root))
    assert code == 0 and again["files"]["read"] == 3
    assert again["chunks"]["added"] == 0 and again["chunks"]["skipped"] == first["chunks"]["added"]
    assert len(openai_env.embedding_calls()) == calls
    assert sorted(raw.get_collection(first["collection"]).get(include=[])["ids"]) == before
    code, doctor = cli(env, "doctor")
    assert code == 0, [c for c in doctor["checks"] if not c["ok"]]
