"""Killed mid-ingest, or run twice at once: nothing is lost, duplicated or orphaned.

Real processes: `rag ingest` runs as a subprocess against the fake OpenAI server, whose latency
makes the run slow enough to SIGKILL after some files are committed and before all are. The
rerun must leave the data dir exactly as a clean ingest of the same files leaves another one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI

RAG = str(Path(sys.executable).parent / "rag")
COLLECTION = "rag_openai_text-embedding-3-small_1536"
FILES = 300


def make_files(root: Path, n: int = FILES) -> None:
    for i in range(n):
        folder = root / f"part{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        ja = "ベクトルは意味を数値で表します。" if i % 2 else "埋め込みは文章を点に変えます。"
        (folder / f"doc{i:03d}.txt").write_text(f"Document {i} is about topic {i * 7919 % 1000}. {ja}",
                                                encoding="utf-8")


def rag_env(server: FakeOpenAI, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(RAG_DATA_DIR=str(data_dir), OPENAI_API_KEY=server.api_key or "",
               OPENAI_BASE_URL=server.base_url, RAG_OPENAI_MAX_RETRIES="0", **extra)
    return env


def ingest(root: Path, env: dict[str, str], timeout: float = 300) -> tuple[int, dict]:
    done = subprocess.run([RAG, "ingest", str(root), "--json"], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, json.loads(done.stdout or "{}")


def committed(data_dir: Path) -> int:
    """Files the manifest records as done (0 before the state database exists)."""
    db_path = data_dir / "state.sqlite3"
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def snapshot(data_dir: Path) -> dict:
    """Everything that must match between two data dirs: store, record manager, manifest."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma = chromadb.PersistentClient(path=str(data_dir / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    got = chroma.get_collection(COLLECTION).get(include=["documents", "metadatas", "embeddings"])
    order = np.argsort(got["ids"])
    with sqlite3.connect(data_dir / "state.sqlite3") as db:
        keys = sorted(r[0] for r in db.execute("SELECT key FROM records WHERE namespace=?", [COLLECTION]))
        files = db.execute("SELECT path, chunks FROM files WHERE namespace=?", [COLLECTION]).fetchall()
    return {
        "ids": [got["ids"][i] for i in order],
        "documents": [got["documents"][i] for i in order],
        "chunk_keys": [(got["metadatas"][i]["path"], got["metadatas"][i]["chunk"]) for i in order],
        "vectors": np.asarray(got["embeddings"])[order],
        "record_keys": keys,
        "files": dict(files),
    }


def assert_consistent(snap: dict, root: Path) -> None:
    assert len(snap["ids"]) == len(set(snap["ids"]))
    assert len(snap["chunk_keys"]) == len(set(snap["chunk_keys"])), "a chunk is stored twice"
    assert snap["record_keys"] == snap["ids"], "record manager and collection disagree (orphans)"
    expected = {str(p) for p in root.rglob("*.txt")}
    assert set(snap["files"]) == expected, "manifest incomplete"
    assert sum(snap["files"].values()) == len(snap["ids"])


def test_sigkill_mid_ingest_then_rerun_equals_a_clean_ingest(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_files(root)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    with FakeOpenAI(api_key="sk-crash-test-0123456789", latency_s=0.05) as server:
        env = rag_env(server, killed_dir, RAG_INGEST_BATCH_CHUNKS="5", RAG_OPENAI_CONCURRENCY="1")
        proc = subprocess.Popen([RAG, "ingest", str(root), "--json"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while committed(killed_dir) < 40:
                assert proc.poll() is None, "ingest ended before it could be killed"
                assert time.monotonic() < deadline, "ingest made no progress"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        done_at_kill = committed(killed_dir)
        assert 40 <= done_at_kill < FILES, done_at_kill

        code, rerun = ingest(root, env)
        assert code == 0, rerun
        assert rerun["files"]["unchanged"] >= done_at_kill
        assert rerun["files"]["read"] + rerun["files"]["unchanged"] == FILES

        code, clean = ingest(root, rag_env(server, clean_dir))
        assert code == 0 and clean["chunks"]["added"] == FILES

    killed, fresh = snapshot(killed_dir), snapshot(clean_dir)
    assert_consistent(killed, root)
    assert_consistent(fresh, root)
    assert killed["ids"] == fresh["ids"]
    assert killed["documents"] == fresh["documents"]
    assert killed["files"] == fresh["files"]
    np.testing.assert_allclose(killed["vectors"], fresh["vectors"], atol=1e-6)


def test_second_ingest_on_the_same_data_dir_refuses(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_files(root, 60)
    data_dir = tmp_path / "data"
    lock = data_dir / "ingest.lock"
    with FakeOpenAI(api_key="sk-crash-test-0123456789", latency_s=0.1) as server:
        env = rag_env(server, data_dir, RAG_INGEST_BATCH_CHUNKS="3", RAG_OPENAI_CONCURRENCY="1")
        first = subprocess.Popen([RAG, "ingest", str(root), "--json"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 120
            while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
                assert first.poll() is None and time.monotonic() < deadline, "first ingest never locked"
                time.sleep(0.02)
            second = subprocess.run([RAG, "ingest", str(root), "--json"], env=env,
                                    capture_output=True, text=True, timeout=120)
            assert first.poll() is None, "the first ingest ended too soon for this test to mean anything"
            out, _ = first.communicate(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
    assert second.returncode == 1
    refusal = json.loads(second.stdout)
    assert refusal["kind"] == "BusyError"
    assert "Another ingest is running" in refusal["error"] and str(first.pid) in refusal["error"]
    assert first.returncode == 0 and json.loads(out)["chunks"]["added"] == 60
    assert_consistent(snapshot(data_dir), root)


def test_lock_is_released_when_the_holder_dies(tmp_path: Path) -> None:
    """A SIGKILLed ingest leaves no stale lock: the kernel drops flock locks with the process."""
    from rag.errors import BusyError
    from rag.ingest.pipeline import ingest_lock

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from rag.ingest.pipeline import ingest_lock\n"
         "with ingest_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
         str(tmp_path / "data")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BusyError, match=f"pid {holder.pid}"), ingest_lock(tmp_path / "data"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with ingest_lock(tmp_path / "data"):
        pass
