"""Provider and store failures: the real OpenAI client against the fake server, a real Chroma.

Each failure must end in a message that names what to change, exit 1, and a store that holds
either whole documents or nothing: never half a document, never vectors of two sizes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.embed.providers import EmbeddingInfo, resolve
from rag.errors import DimensionMismatchError
from rag.retrieve.searcher import Searcher
from rag.state import Manifest
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def stored_count() -> int:
    settings = get_settings()
    return store.collection(settings, resolve(settings)).count()


def manifest_paths() -> set[str]:
    settings = get_settings()
    return {r.path for r in Manifest(settings, resolve(settings).collection_name).all() if r.done}


def use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_401_names_the_key_and_writes_nothing(corpus: Path, fake_openai: FakeOpenAI, monkeypatch,
                                              capsys) -> None:
    wrong = "sk-wrong-key-abcdef0123456789"
    use(monkeypatch, OPENAI_API_KEY=wrong, OPENAI_BASE_URL=fake_openai.base_url)
    code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 1
    assert out["kind"] == "ProviderError"
    assert "401" in out["error"] and "OPENAI_API_KEY" in out["error"]
    assert wrong not in json.dumps(out) and wrong[-8:] not in json.dumps(out)
    assert stored_count() == 0 and manifest_paths() == set()
    assert len(fake_openai.embedding_calls()) == 1  # a 401 is not retried


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried_then_succeeds(corpus: Path, openai_env: FakeOpenAI, capsys, status: int) -> None:
    openai_env.fail_next(status, times=2, endpoint="embeddings")
    code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 0, out
    assert len(openai_env.embedding_calls()) == 3  # two failures, then the retry that worked
    assert out["chunks"]["added"] == stored_count() > 0


def test_429_backs_off_then_succeeds(corpus: Path, openai_env: FakeOpenAI, capsys) -> None:
    openai_env.fail_next(429, times=2, retry_after=0.4, endpoint="embeddings")
    started = time.monotonic()
    code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 0, out
    assert time.monotonic() - started >= 0.8  # waited retry-after twice before the third try
    assert len(openai_env.embedding_calls()) == 3
    assert stored_count() == out["chunks"]["added"]


def test_persistent_429_gives_up_with_a_clear_message(corpus: Path, openai_env: FakeOpenAI, capsys) -> None:
    openai_env.fail_next(429, times=100, endpoint="embeddings")
    code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 1 and out["kind"] == "ProviderError"
    assert "Rate limited" in out["error"] and "429" in out["error"] and "2 retries" in out["error"]
    assert "RAG_OPENAI_CONCURRENCY" in out["error"]
    assert len(openai_env.embedding_calls()) == 3  # the first try and the two retries
    assert stored_count() == 0 and manifest_paths() == set()


def multi_chunk_docs(root: Path, n: int = 12) -> list[Path]:
    root.mkdir()
    paths = []
    for i in range(n):
        path = root / f"doc{i:02d}.md"
        body = " ".join(f"Sentence {j} of document {i} explains vectors and tokens." for j in range(12))
        path.write_text(f"# Document {i}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_timeout_mid_batch_leaves_no_half_document(tmp_path: Path, openai_env: FakeOpenAI,
                                                   monkeypatch, capsys) -> None:
    docs = multi_chunk_docs(tmp_path / "docs")
    use(monkeypatch, RAG_CHUNK_SIZE="40", RAG_CHUNK_OVERLAP="0", RAG_OPENAI_BATCH_SIZE="2",
        RAG_INGEST_BATCH_CHUNKS="8", RAG_OPENAI_CONCURRENCY="2", RAG_OPENAI_TIMEOUT_S="0.5",
        RAG_OPENAI_MAX_RETRIES="0")
    openai_env.latency_s = 0.02

    def hang_once_requests_flow() -> None:  # some requests of the run succeed, then one hangs
        deadline = time.monotonic() + 30
        while len(openai_env.embedding_calls()) < 6 and time.monotonic() < deadline:
            time.sleep(0.002)
        openai_env.hang_next(3.0, endpoint="embeddings")

    trigger = threading.Thread(target=hang_once_requests_flow, daemon=True)
    trigger.start()
    code, out = run_cli(capsys, "ingest", str(tmp_path / "docs"))
    trigger.join()
    assert code == 1 and out["kind"] == "ProviderError"
    assert "did not answer within 0.5 s" in out["error"] and "RAG_OPENAI_TIMEOUT_S" in out["error"]

    def per_document() -> dict[str, int]:
        coll = store.collection(get_settings(), resolve(get_settings()))
        counts: dict[str, int] = {}
        for meta in coll.get(include=["metadatas"])["metadatas"]:
            counts[meta["path"]] = counts.get(meta["path"], 0) + 1
        return counts

    partial, recorded = per_document(), manifest_paths()
    assert set(partial) == recorded  # stored documents are exactly the recorded ones

    openai_env.latency_s = 0.0
    code, out = run_cli(capsys, "ingest", str(tmp_path / "docs"))
    assert code == 0, out
    full = per_document()
    assert set(full) == {str(p) for p in docs}
    assert all(full[p] > 1 for p in full)  # multi-chunk documents: "whole" means something
    for path, count in partial.items():
        assert count == full[path], f"{path} was stored with {count} of its {full[path]} chunks"
    records = Manifest(get_settings(), resolve(get_settings()).collection_name).all()
    assert all(r.done for r in records) and sum(r.chunks for r in records) == sum(full.values())


def test_connection_refused(corpus: Path, monkeypatch, capsys) -> None:
    use(monkeypatch, OPENAI_API_KEY="sk-test-0123456789abcdef",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", RAG_OPENAI_MAX_RETRIES="1")
    code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 1 and out["kind"] == "ProviderError"
    assert "Cannot reach" in out["error"] and "OPENAI_BASE_URL" in out["error"]
    assert stored_count() == 0


def test_chroma_server_down(corpus: Path, monkeypatch, capsys) -> None:
    port = free_port()
    use(monkeypatch, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(port))
    for argv in (("ingest", str(corpus)), ("search", "猫"), ("stats",)):
        code, out = run_cli(capsys, *argv)
        assert code == 1 and out["kind"] == "StoreError", (argv, out)
        assert f"Cannot reach the Chroma server at 127.0.0.1:{port}" in out["error"]
        assert "chroma run" in out["error"] and "CHROMA_HOST" in out["error"]


def test_provider_returning_another_size_is_refused(corpus: Path, monkeypatch, capsys) -> None:
    """A compatible server that ignores the configured size must not fill a 1,536-dim collection."""
    with FakeOpenAI(api_key="sk-test-0123456789abcdef", dims=768) as server:
        use(monkeypatch, OPENAI_API_KEY=server.api_key or "", OPENAI_BASE_URL=server.base_url)
        code, out = run_cli(capsys, "ingest", str(corpus))
    assert code == 1 and out["kind"] == "ProviderError"
    assert "768-dim" in out["error"] and "RAG_OPENAI_EMBEDDING_DIMS=768" in out["error"]
    assert stored_count() == 0


def foreign_collection(metadata: dict | None, dims: int) -> str:
    """A collection with our model's name but vectors of another size, as another setup left it."""
    settings = get_settings()
    info = resolve(settings)
    coll = store.client(settings).create_collection(info.collection_name, metadata=metadata)
    coll.add(ids=["old-1", "old-2"], documents=["old one", "old two"],
             embeddings=[[1.0] + [0.0] * (dims - 1), [0.0, 1.0] + [0.0] * (dims - 2)])
    return info.collection_name


@pytest.mark.parametrize("metadata", [
    {"provider": "openai", "model": "text-embedding-3-small", "dims": 256, "created_by": "rag"},
    None,  # made by another tool: no metadata, only the vectors tell their size
], ids=["labelled", "unlabelled"])
def test_collection_of_another_size_is_refused(corpus: Path, openai_env: FakeOpenAI, metadata,
                                               store_mode: str, capsys) -> None:
    name = foreign_collection(metadata, 256)
    for argv in (("ingest", str(corpus)), ("search", "猫")):
        code, out = run_cli(capsys, *argv)
        assert code == 1 and out["kind"] == "DimensionMismatchError", (argv, out)
        assert "256" in out["error"] and "1536" in out["error"] and "rag reset --yes" in out["error"]
    coll = store.client(get_settings()).get_collection(name)
    assert coll.count() == 2  # the old vectors alone: nothing was mixed in
    assert {len(v) for v in coll.get(include=["embeddings"])["embeddings"]} == {256}
    assert openai_env.embedding_calls() == []  # refused before paying for any embedding


def test_check_dims_refuses_another_model_or_size() -> None:
    info = EmbeddingInfo("openai", "text-embedding-3-small", 1536)
    store.check_dims({"model": "text-embedding-3-small", "dims": 1536}, info)
    for other in ({"model": "text-embedding-3-small", "dims": 256},
                  {"model": "text-embedding-ada-002", "dims": 1536}):
        with pytest.raises(DimensionMismatchError, match="Refusing to mix vector spaces"):
            store.check_dims(other, info)


def test_switching_size_uses_a_new_collection(corpus: Path, openai_env: FakeOpenAI, monkeypatch,
                                              capsys) -> None:
    code, first = run_cli(capsys, "ingest", str(corpus))
    assert code == 0
    use(monkeypatch, RAG_OPENAI_EMBEDDING_DIMS="256")
    code, out = run_cli(capsys, "search", "猫")
    assert code == 1 and out["kind"] == "EmptyStoreError"  # not the 1,536-dim collection
    code, second = run_cli(capsys, "ingest", str(corpus))
    assert code == 0 and second["collection"] != first["collection"]
    hits = Searcher(get_settings()).search("猫", k=1, mode="vector").hits
    assert len(hits[0].vector or []) == 256
    sizes = {c.name: c.dims for c in store.list_collections(get_settings())}
    assert sizes == {first["collection"]: 1536, second["collection"]: 256}
    assert openai_env.embedding_calls()[-1].json["dimensions"] == 256
