"""Inputs that used to end in a traceback now end in a message that names the fix, with the
README's exit code (1: nothing could be done). Real processes where the input is the process's
own (argv bytes, environment), real Chroma servers killed with SIGKILL mid-ingest and mid-search.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher
from tests.conftest import REPO, free_port, start_process
from tests.fake_openai import FakeOpenAI


def _rag(*args: str | bytes, env: dict[str, str] | None = None, timeout: float = 300,
         cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, env=env,
                          cwd=cwd, timeout=timeout)


def _no_traceback(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-3000:]
    return err


@pytest.fixture
def ingested(corpus: Path, local_model) -> Path:
    Ingestor(get_settings()).ingest([corpus])
    return corpus


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
@pytest.mark.parametrize("k", ["-1", "0", "101"])
def test_k_out_of_range(ingested: Path, mode: str, k: str, capsys) -> None:
    for command in ("search", "ask"):
        assert main([command, "猫", "-k", k, "--mode", mode, "--json"]) == 1
        data = json.loads(capsys.readouterr().out)
        assert data["kind"] == "QueryError" and "-k 5" in data["error"] and k in data["error"]


def test_eval_file_that_is_not_utf8(ingested: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes('{"question": "猫の名前は？", "source": "ja/neko_sjis.txt"}\n'.encode("cp932"))
    assert main(["eval", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert "not UTF-8" in data["error"] and "iconv" in data["error"]


def test_question_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    for args in (["search", "猫".encode("cp932")], ["ask", b"\xff\xfe", "--json"],
                 ["embed", "寿司".encode("euc_jp")]):
        proc = _rag(*args, env={"RAG_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
        err = _no_traceback(proc)
        assert proc.returncode == 1
        shown = proc.stdout.decode() + err
        assert "not UTF-8" in shown and "LANG=C.UTF-8" in shown


def test_data_dir_under_a_regular_file(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a folder", encoding="utf-8")
    env = {"RAG_DATA_DIR": str(tmp_path / "plain" / "data")}
    for args in (["ingest", str(corpus), "--json"], ["search", "猫", "--json"], ["stats", "--json"]):
        proc = _rag(*args, env=env, cwd=tmp_path)
        _no_traceback(proc)
        assert proc.returncode == 1, args
        data = json.loads(proc.stdout)
        assert data["kind"] == "ConfigError" and "RAG_DATA_DIR" in data["error"]


def test_damaged_state_file(ingested: Path, settings, capsys) -> None:
    store.reset_clients()
    for name in ("state.sqlite3-wal", "state.sqlite3-shm"):
        (settings.data_dir / name).unlink(missing_ok=True)
    settings.state_db.unlink()  # a new file: connections still open elsewhere keep the old one
    settings.state_db.write_bytes(b"this is not a database" * 100)
    for args in (["search", "猫"], ["ingest", str(ingested)], ["ask", "猫は？"], ["delete", "x.md"]):
        assert main([*args, "--json"]) == 1, args
        data = json.loads(capsys.readouterr().out)
        assert data["kind"] == "StateError" and "mv " in data["error"], args
    assert main(["doctor", "--json"]) == 1  # doctor reports it as a failed check, and goes on
    report = json.loads(capsys.readouterr().out)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert len(failed) == 1 and "damaged" in failed[0]["detail"]
    assert any(c["ok"] and c["name"] == "provider" for c in report["checks"])


@pytest.mark.parametrize("key", ["sk-abc\u200bdefghijklmnopqrstuvwx", "\ufeffsk-abcdefghijklmnopqrstuvwx",
                                 "sk-abcdefghij\u00a0klmnopqrstuvwx", "“sk-abcdefghijklmnopqrstuvwx”"])
def test_key_pasted_with_an_invisible_or_smart_character(key: str, tmp_path: Path) -> None:
    for args in (["search", "猫", "--json"], ["doctor", "--json"]):
        proc = _rag(*args, env={"OPENAI_API_KEY": key, "RAG_DATA_DIR": str(tmp_path / "d")}, cwd=tmp_path)
        _no_traceback(proc)
        assert proc.returncode == 1
        data = json.loads(proc.stdout)
        assert "OPENAI_API_KEY" in data["error"] and "paste the key again" in data["error"]
        assert "abcdefghij" not in proc.stdout.decode() + proc.stderr.decode()


@pytest.fixture
def own_chroma(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """A Chroma server of this test's own, to kill."""
    chroma = str(Path(sys.executable).parent / "chroma")
    port = free_port()
    proc = start_process(
        [chroma, "run", "--path", str(tmp_path / "chroma-db"), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v2/heartbeat", tmp_path / "chroma.log",
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_chroma_server_killed_mid_ingest(tmp_path: Path, own_chroma) -> None:
    server, port = own_chroma
    docs = tmp_path / "docs"
    for i in range(60):
        (docs / f"part{i % 3}").mkdir(parents=True, exist_ok=True)
        (docs / f"part{i % 3}" / f"doc{i:02d}.txt").write_text(f"Document {i} about topic {i * 37}.",
                                                              encoding="utf-8")
    with FakeOpenAI(api_key="sk-test-0123456789abcdef", dims=32, latency_s=0.15) as fake:
        env = {"RAG_DATA_DIR": str(tmp_path / "data"), "CHROMA_HOST": "127.0.0.1",
               "CHROMA_PORT": str(port), "OPENAI_API_KEY": fake.api_key or "",
               "OPENAI_BASE_URL": fake.base_url, "RAG_OPENAI_EMBEDDING_DIMS": "32",
               "RAG_INGEST_BATCH_CHUNKS": "4", "RAG_OPENAI_BATCH_SIZE": "4"}
        ingest = subprocess.Popen(
            [sys.executable, "-m", "rag", "ingest", str(docs), "--json"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO), **env})
        deadline = time.monotonic() + 120
        while len(fake.embedding_calls()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait()
        out, err = ingest.communicate(timeout=300)
    assert b"Traceback" not in err, err.decode()[-3000:]
    assert ingest.returncode == 1
    data = json.loads(out)
    assert data["kind"] == "StoreError" and "Cannot reach the Chroma server" in data["error"]
    assert f"--port {port}" in data["error"]


def test_chroma_server_killed_under_a_long_lived_searcher(tmp_path: Path, corpus: Path, local_model,
                                                          own_chroma, monkeypatch, capsys) -> None:
    server, port = own_chroma
    ingested = corpus
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(port))
    get_settings.cache_clear()
    store.reset_clients()
    assert main(["ingest", str(ingested), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "猫", "--json"]) == 0  # the client is now cached in this process
    capsys.readouterr()
    searcher = Searcher(get_settings())  # as the app keeps one
    server.send_signal(signal.SIGKILL)
    server.wait()
    from rag.errors import StoreError
    from rag.failures import explain

    with pytest.raises(Exception) as raised:
        searcher.search("猫")
    error = explain(raised.value, get_settings())  # what the app's error box shows
    assert isinstance(error, StoreError) and "Cannot reach the Chroma server" in str(error)
    for args in (["search", "猫"], ["ask", "寿司とは？"], ["search", "猫", "--mode", "vector"], ["stats"]):
        assert main([*args, "--json"]) == 1, args
        data = json.loads(capsys.readouterr().out)
        assert "Cannot reach the Chroma server" in data["error"], args
