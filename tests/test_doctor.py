"""`rag doctor`: each problem it can meet is reported with a fix, and a healthy setup exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.embed.providers import resolve
from rag.ingest.pipeline import Ingestor, ingest_lock
from rag.state import Manifest
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, dict]:
    """Exit code, the JSON report, and its checks by name."""
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"settings", "embedding", "llm", "store", "checks"}
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "detail", "fix"}
        assert check["ok"] or check["fix"], check  # every problem comes with what to do
    assert code == (0 if all(c["ok"] for c in report["checks"]) else 1)
    return code, report, {c["name"]: c for c in report["checks"]}


def use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def ingest(path: Path) -> None:
    assert not Ingestor(get_settings()).ingest([path]).failed


def test_healthy_local_setup(corpus: Path, local_model, capsys) -> None:
    ingest(corpus)
    code, report, checks = doctor(capsys)
    assert code == 0
    assert report["embedding"] == {
        "provider": "local", "model": "use-multilingual-v3", "dims": 512,
        "reason": "no OPENAI_API_KEY: using the bundled offline model (use)",
        "collection": "rag_local_use-multilingual-v3_512"}
    assert report["llm"]["mode"] == "extractive" and "no OPENAI_API_KEY" in report["llm"]["reason"]
    assert report["store"]["mode"] == "embedded"
    assert [(c["name"], c["dims"]) for c in report["store"]["collections"]] == [
        ("rag_local_use-multilingual-v3_512", 512)]
    assert {"embedding", "llm", "store", "collection", "records", "provider"} <= set(checks)
    assert "512 dims = model's 512" in checks["collection"]["detail"]
    assert report["settings"]["data_dir"] == str(get_settings().data_dir)

    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "embedding: local use-multilingual-v3 (512 dims)" in text
    assert "ok   provider: local model use-multilingual-v3 loads and embeds (512 dims)" in text
    assert text.rstrip().endswith("healthy")


def test_fresh_setup_says_to_ingest_and_creates_nothing(local_model, capsys) -> None:
    code, report, checks = doctor(capsys)
    assert code == 1
    assert not checks["collection"]["ok"] and "rag ingest" in checks["collection"]["fix"]
    assert checks["store"]["ok"] and checks["provider"]["ok"]
    assert not get_settings().chroma_dir.exists()
    assert main(["doctor"]) == 1
    text = capsys.readouterr().out
    assert "BAD  collection: nothing ingested yet" in text and "     fix: Run `rag ingest PATH`" in text
    assert text.rstrip().endswith("1 problem found")


def test_healthy_openai_setup_probes_both_models(corpus: Path, openai_env: FakeOpenAI, store_mode: str,
                                                 capsys) -> None:
    ingest(corpus)
    before = len(openai_env.requests)
    code, report, checks = doctor(capsys)
    assert code == 0, report["checks"]
    assert report["embedding"]["provider"] == "openai" and report["embedding"]["dims"] == 1536
    assert report["embedding"]["reason"] == "OPENAI_API_KEY is set"
    assert report["llm"] == {"mode": "llm", "model": "gpt-4o-mini", "reason": "OPENAI_API_KEY is set"}
    assert report["store"]["mode"] == store_mode
    assert checks["provider"]["detail"] == "text-embedding-3-small answers (1536 dims)"
    assert checks["llm provider"]["ok"]
    probes = {r.path.rsplit("/", 1)[-1]: r for r in openai_env.requests[before:]}
    assert len(openai_env.requests) - before == len(probes) == 2
    probe_embed, probe_chat = probes["embeddings"], probes["completions"]
    assert probe_embed.json["input"] == ["doctor"]
    assert probe_chat.json["max_tokens"] == 1


def test_rejected_key(corpus: Path, openai_env: FakeOpenAI, capsys) -> None:
    ingest(corpus)
    openai_env.fail_next(401, times=4)  # two probes for --json, two for the human report
    code, _, checks = doctor(capsys)
    assert code == 1
    for name in ("provider", "llm provider"):
        assert not checks[name]["ok"] and "401" in checks[name]["detail"]
        assert "OPENAI_API_KEY" in checks[name]["fix"]
    assert checks["store"]["ok"] and checks["collection"]["ok"]  # the rest is still reported
    assert main(["doctor"]) == 1 and "BAD  provider" in capsys.readouterr().out


def test_provider_unreachable_is_quick(openai_env: FakeOpenAI, monkeypatch, capsys) -> None:
    use(monkeypatch, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", RAG_OPENAI_MAX_RETRIES="4")
    code, _, checks = doctor(capsys)
    assert code == 1
    assert "Cannot reach" in checks["provider"]["detail"] and "OPENAI_BASE_URL" in checks["provider"]["fix"]


def test_provider_size_differs_from_settings(corpus: Path, monkeypatch, capsys) -> None:
    with FakeOpenAI(api_key="sk-test-0123456789abcdef", dims=768) as server:
        use(monkeypatch, OPENAI_API_KEY=server.api_key or "", OPENAI_BASE_URL=server.base_url)
        _, _, checks = doctor(capsys)
    assert "returned 768-dim vectors" in checks["provider"]["detail"]
    assert "RAG_OPENAI_EMBEDDING_DIMS=768" in checks["provider"]["fix"]


def test_chroma_server_down(local_model, monkeypatch, capsys) -> None:
    port = free_port()
    use(monkeypatch, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(port))
    code, report, checks = doctor(capsys)
    assert code == 1
    assert report["store"] == {"mode": "server", "host": "127.0.0.1", "port": port}
    assert f"Cannot reach the Chroma server at 127.0.0.1:{port}" in checks["store"]["detail"]
    assert "chroma run" in checks["store"]["fix"] and "CHROMA_HOST" in checks["store"]["fix"]
    assert checks["provider"]["ok"]  # one failure does not hide the other checks


def test_collection_of_another_size(openai_env: FakeOpenAI, capsys) -> None:
    settings = get_settings()
    info = resolve(settings)
    coll = store.client(settings).create_collection(
        info.collection_name, metadata={"provider": "openai", "model": info.model, "dims": 256})
    coll.add(ids=["a"], documents=["old"], embeddings=[[1.0] + [0.0] * 255])
    code, _, checks = doctor(capsys)
    assert code == 1
    assert "holds 256-dim vectors" in checks["collection"]["detail"]
    assert "rag reset --yes" in checks["collection"]["fix"]


def test_other_models_collections_are_listed_not_problems(corpus: Path, openai_env: FakeOpenAI,
                                                          monkeypatch, capsys) -> None:
    ingest(corpus)
    use(monkeypatch, RAG_OPENAI_EMBEDDING_DIMS="256")
    ingest(corpus)
    code, report, checks = doctor(capsys)
    assert code == 0
    other = checks["collection rag_openai_text-embedding-3-small_1536"]
    assert other["ok"] and "not used by the current model" in other["detail"]
    assert sorted(c["dims"] for c in report["store"]["collections"]) == [256, 1536]


def test_records_out_of_step_then_repaired_by_ingest(corpus: Path, openai_env: FakeOpenAI, capsys) -> None:
    """What a kill between the store write and the record update leaves, and how it heals."""
    ingest(corpus)
    settings = get_settings()
    name = resolve(settings).collection_name
    path = str(corpus / "cosine.md")
    Manifest(settings, name).remove([path])  # chunks stored, record never committed
    code, _, checks = doctor(capsys)
    assert code == 1 and not checks["records"]["ok"]
    assert "rag ingest PATH" in checks["records"]["fix"]
    ingest(corpus)
    code, _, checks = doctor(capsys)
    assert code == 0 and checks["records"]["ok"]


def test_reports_a_running_ingest(corpus: Path, openai_env: FakeOpenAI, capsys) -> None:
    import os

    ingest(corpus)
    with ingest_lock(get_settings().data_dir):
        code, _, checks = doctor(capsys)
    assert code == 0
    assert checks["ingest"]["ok"] and f"pid {os.getpid()}" in checks["ingest"]["detail"]


def test_misconfiguration_is_named(monkeypatch, capsys) -> None:
    use(monkeypatch, RAG_EMBEDDING_PROVIDER="openai", RAG_ANSWER_MODE="llm")
    code, report, checks = doctor(capsys)
    assert code == 1
    assert "RAG_EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY" in checks["embedding"]["detail"]
    assert "OPENAI_API_KEY" in checks["embedding"]["fix"]
    assert "RAG_ANSWER_MODE=llm needs OPENAI_API_KEY" in checks["llm"]["detail"]
    assert checks["store"]["ok"]
    assert "error" in report["embedding"]


def test_invalid_setting_is_explained(monkeypatch, capsys) -> None:
    use(monkeypatch, RAG_CHUNK_SIZE="big")
    assert main(["doctor", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "ConfigError" and "chunk_size" in out["error"]
