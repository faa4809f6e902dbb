"""Killed mid-ingest, or run twice at once: nothing is lost, duplicated or orphaned.

Real processes: `rag ingest` runs as a subprocess against the fake OpenAI server, whose latency
makes the run slow enough to SIGKILL after some files are committed and before all are. The
rerun must leave the data dir exactly as a clean ingest of the same files leaves another one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
RAG = [sys.executable, "-m", "rag"]
"""This checkout's `rag` (the venv's `rag` script may belong to another checkout)."""
COLLECTION = "rag_openai_text-embedding-3-small_1536"
MANIFEST = "ragfiles_" + COLLECTION
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
    env.update(PYTHONPATH=str(REPO), RAG_DATA_DIR=str(data_dir), OPENAI_API_KEY=server.api_key or "",
               OPENAI_BASE_URL=server.base_url, RAG_OPENAI_MAX_RETRIES="0", **extra)
    return env


def ingest(root: Path, env: dict[str, str], timeout: float = 300) -> tuple[int, dict]:
    done = subprocess.run([*RAG, "ingest", str(root), "--json"], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, json.loads(done.stdout or "{}")


_clients: dict[Path, object] = {}


def raw_store(data_dir: Path):
    """A raw Chroma client on the data dir's embedded store, opened once it exists (read only)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if data_dir not in _clients:
        if not (data_dir / "chroma" / "chroma.sqlite3").exists():
            return None
        try:
            _clients[data_dir] = chromadb.PersistentClient(
                path=str(data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
        except Exception:  # the ingest is creating the store this very moment: look again later
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(data_dir / "chroma"), None)
            return None
    return _clients[data_dir]


def manifest(data_dir: Path) -> list[dict]:
    """The records of the files the store holds (its manifest collection), [] before there is one."""
    chroma = raw_store(data_dir)
    try:
        got = chroma.get_collection(MANIFEST).get(where={"kind": "file"}, include=["metadatas"])
    except Exception:  # not created yet
        return []
    return [m for m in got["metadatas"] if m["state"] != "deleted"]  # tombstones of deleted files


def committed(data_dir: Path) -> int:
    """Files the store's manifest records as done."""
    return sum(m["state"] == "done" for m in manifest(data_dir)) if raw_store(data_dir) else 0


def chunk_count(data_dir: Path) -> int:
    try:
        return raw_store(data_dir).get_collection(COLLECTION).count()
    except Exception:
        return 0


def snapshot(data_dir: Path) -> dict:
    """Everything that must match between two data dirs: chunks, vectors, manifest."""
    got = raw_store(data_dir).get_collection(COLLECTION).get(include=["documents", "metadatas", "embeddings"])
    order = np.argsort(got["ids"])
    records = manifest(data_dir)
    per_path: dict[str, int] = {}
    for meta in got["metadatas"]:
        per_path[meta["path"]] = per_path.get(meta["path"], 0) + 1
    return {
        "ids": [got["ids"][i] for i in order],
        "documents": [got["documents"][i] for i in order],
        "chunk_keys": [(got["metadatas"][i]["path"], got["metadatas"][i]["chunk"]) for i in order],
        "vectors": np.asarray(got["embeddings"])[order],
        "chunks_per_file": per_path,
        "unfinished": sorted(m["path"] for m in records if m["state"] != "done"),
        "files": {m["path"]: m["chunks"] for m in records},
    }


def assert_consistent(snap: dict, root: Path) -> None:
    assert len(snap["ids"]) == len(set(snap["ids"]))
    assert len(snap["chunk_keys"]) == len(set(snap["chunk_keys"])), "a chunk is stored twice"
    assert snap["unfinished"] == [], "a file was left half-written"
    assert snap["chunks_per_file"] == snap["files"], "store and manifest disagree (orphans or losses)"
    expected = {str(p) for p in root.rglob("*.txt")}
    assert set(snap["files"]) == expected, "manifest incomplete"
    assert sum(snap["files"].values()) == len(snap["ids"])


def test_sigkill_mid_ingest_then_rerun_equals_a_clean_ingest(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_files(root)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    with FakeOpenAI(api_key="sk-crash-test-0123456789", latency_s=0.05) as server:
        env = rag_env(server, killed_dir, RAG_INGEST_BATCH_CHUNKS="5", RAG_OPENAI_CONCURRENCY="1")
        proc = subprocess.Popen([*RAG, "ingest", str(root), "--json"], env=env,
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
        first = subprocess.Popen([*RAG, "ingest", str(root), "--json"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 120
            while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
                assert first.poll() is None and time.monotonic() < deadline, "first ingest never locked"
                time.sleep(0.02)
            second = subprocess.run([*RAG, "ingest", str(root), "--json"], env=env,
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


def accounted(data_dir: Path) -> int:
    """Chunks that finished files account for."""
    return sum(m["chunks"] for m in manifest(data_dir) if m["state"] == "done")


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "Tt"


def kill_between_write_and_commit(proc: subprocess.Popen, data_dir: Path, sig: int) -> None:
    """Freeze the ingest again and again until the store holds chunks no finished file accounts
    for (written, not committed: the window a `docker stop` lands in), then send `sig` there."""
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, "the ingest ended before the kill landed in the window"
        assert time.monotonic() < deadline, "never caught the ingest between write and commit"
        os.kill(proc.pid, signal.SIGSTOP)
        while not stopped(proc.pid):
            time.sleep(0.001)
        if committed(data_dir) >= 10 and chunk_count(data_dir) > accounted(data_dir):
            os.kill(proc.pid, sig)
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM once continued
            proc.wait(timeout=30)
            return
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.002 * (os.getpid() % 5))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_between_write_and_commit_then_files_edited(tmp_path: Path, sig: int, chroma_server,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks stored, their file not yet recorded, then the files change (or go) before the
    re-run: the re-run with --prune must still equal a clean ingest of the edited folder.

    The killed ingest writes to a Chroma server, so this process can look at the store while
    the ingest is frozen (an embedded store's SQLite lock would freeze the look too)."""
    import chromadb

    from rag.config import get_settings
    from rag.ingest.pipeline import reset

    host, port = chroma_server
    monkeypatch.setenv("CHROMA_HOST", host)
    monkeypatch.setenv("CHROMA_PORT", str(port))
    get_settings.cache_clear()
    reset(get_settings())
    root = tmp_path / "docs"
    make_files(root, 120)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    _clients[killed_dir] = chromadb.HttpClient(host=host, port=port)
    with FakeOpenAI(api_key="sk-crash-test-0123456789", latency_s=0.03) as server:
        env = rag_env(server, killed_dir, RAG_INGEST_BATCH_CHUNKS="5", RAG_OPENAI_CONCURRENCY="1",
                      CHROMA_HOST=host, CHROMA_PORT=str(port))
        proc = subprocess.Popen([*RAG, "ingest", str(root), "--json"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            kill_between_write_and_commit(proc, killed_dir, sig)
        finally:
            if proc.poll() is None:
                proc.kill()
        orphans = chunk_count(killed_dir) - accounted(killed_dir)
        assert orphans > 0 and proc.returncode == -sig

        for i, path in enumerate(sorted(root.rglob("*.txt"))):  # every file edited, some removed
            if i % 4 == 0:
                path.unlink()
            else:
                path.write_text(f"Edited {path.stem}: 改訂版の文書です。", encoding="utf-8")
        code, rerun = ingest_with(root, env, "--prune")
        assert code == 0, rerun
        code, clean = ingest(root, rag_env(server, clean_dir))
        assert code == 0

    killed, fresh = snapshot(killed_dir), snapshot(clean_dir)
    assert_consistent(killed, root)
    assert not any("Document" in d for d in killed["documents"]), "stale text is still searchable"
    assert killed["ids"] == fresh["ids"]
    assert killed["documents"] == fresh["documents"]
    assert killed["files"] == fresh["files"]


def ingest_with(root: Path, env: dict[str, str], *extra: str) -> tuple[int, dict]:
    done = subprocess.run([*RAG, "ingest", str(root), *extra, "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, json.loads(done.stdout or "{}")
