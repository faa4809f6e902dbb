"""The API key never leaves the settings object: not in logs, JSON, errors, the doctor or reprs."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from rag.answer.llm import ChatLLM, resolve_llm
from rag.cli import main
from rag.config import get_settings
from rag.embed.providers import get_embeddings, resolve
from tests.conftest import REPO, free_port
from tests.fake_openai import FakeOpenAI

KEY = "sk-live-SECRETVALUE0123456789abcd"


def leaks(text: str) -> list[str]:
    """Pieces of the key found in `text`: the whole key or any 12 consecutive characters of it."""
    found = [KEY] if KEY in text else []
    found += [KEY[i:i + 12] for i in range(len(KEY) - 11) if KEY[i:i + 12] in text]
    return found


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("RAG_OPENAI_MAX_RETRIES", "1")
        get_settings.cache_clear()
        yield server


def test_key_absent_from_logs_json_and_errors(corpus: Path, keyed: FakeOpenAI, capsys,
                                              caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)  # the openai client and httpx log requests at DEBUG
    outputs = []
    for argv in (["ingest", str(corpus)], ["search", "猫"], ["ask", "寿司とは？"], ["stats"],
                 ["embed", "ベクトル"], ["doctor"]):
        for json_flag in (["--json"], []):
            code = main([*argv, *json_flag])
            assert code == 0, argv
            captured = capsys.readouterr()
            outputs.append(captured.out + captured.err)
    keyed.fail_next(401, endpoint="chat")  # the server rejects the key it was sent
    assert main(["ask", "寿司とは？", "--json"]) == 1
    rejected = capsys.readouterr()
    outputs.append(rejected.out + rejected.err)
    assert "OPENAI_API_KEY" in json.loads(rejected.out)["error"]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nobody listens
    monkeypatch.setenv("RAG_OPENAI_MAX_RETRIES", "0")
    get_settings.cache_clear()
    assert main(["embed", "a text never embedded before", "--json"]) == 1
    refused = capsys.readouterr()
    outputs.append(refused.out + refused.err)

    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG logging really was on
    assert len(keyed.requests) > 5
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in keyed.requests)
    assert leaks(caplog.text) == []
    assert leaks(" ".join(repr(r.args) + repr(r.__dict__) for r in caplog.records)) == []
    for out in outputs:
        assert leaks(out) == [], out


def test_key_absent_from_reprs(keyed: FakeOpenAI) -> None:
    settings = get_settings()
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == KEY
    shown = [repr(settings), str(settings), settings.model_dump_json(), json.dumps(settings.masked())]
    embeddings = get_embeddings(settings, resolve(settings))
    shown += [repr(embeddings), repr(embeddings.inner._client)]  # type: ignore[attr-defined]
    llm = ChatLLM(settings, resolve_llm(settings))
    shown.append(repr(llm._client(streaming=True, logprobs=True)))
    for text in shown:
        assert leaks(text) == [], text
    assert settings.masked()["openai_api_key"] == "***" + KEY[-4:]


def test_dotenv_key_is_used_and_masked(tmp_path: Path, capsys) -> None:
    """A key in ./.env works, and `rag doctor` shows it masked."""
    with FakeOpenAI(api_key=KEY) as server:
        (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\nOPENAI_BASE_URL={server.base_url}\n")
        get_settings.cache_clear()
        code = main(["doctor", "--json"])
        out = capsys.readouterr().out
    report = json.loads(out)
    assert report["embedding"]["provider"] == "openai"
    assert report["settings"]["openai_api_key"] == "***" + KEY[-4:]
    assert {c["name"]: c["ok"] for c in report["checks"]}["provider"] is True
    assert code == 1  # healthy apart from an empty store
    assert leaks(out) == []


def test_credentials_in_base_url_are_masked(capsys, monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://proxyuser:{KEY}@127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAG_OPENAI_MAX_RETRIES", "0")
    get_settings.cache_clear()
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["openai_base_url"] == f"http://***@127.0.0.1:{port}/v1"
    provider = next(c for c in report["checks"] if c["name"] == "provider")
    assert not provider["ok"] and f"***@127.0.0.1:{port}" in provider["detail"]
    assert main(["embed", "text", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert "Cannot reach" in error and leaks(error) == [] and "proxyuser" not in error
    assert leaks(json.dumps(report)) == []


def test_dotenv_is_git_ignored() -> None:
    lines = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in lines
    if (REPO / ".git").exists():
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", ".env"], check=False)
        assert ignored.returncode == 0
