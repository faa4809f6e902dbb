"""Three doors a key leaked through, each tested closed: URL credentials in httpx's INFO logs,
a key in the base URL's query string, and a server error body that repeats the key.

Real `rag` processes with the app's own logging configuration, the real openai client against
the fake OpenAI server, `rag doctor`, and the app through `AppTest`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.cli import main
from rag.config import get_settings
from rag.secrets import mask_text, mask_url
from tests.conftest import REPO, finish_first_start, free_port
from tests.fake_openai import FakeOpenAI

SECRET = "pw-Hunter2-SECRETVALUE-4242"
KEY = "sk-live-KEYVALUE0123456789abcdefgh"
# the app's logging: app.py calls logging.basicConfig(level=logging.INFO) before anything else
AS_THE_APP_LOGS = ("import logging, sys; logging.basicConfig(level=logging.INFO); "
                   "from rag.cli import main; sys.exit(main(sys.argv[1:]))")


def _leaks(text: str) -> list[str]:
    return [s for s in (SECRET, KEY, SECRET[3:15], KEY[8:20]) if s in text]


def _rag_logged(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))},
           "PYTHONPATH": str(REPO), "RAG_DATA_DIR": str(cwd / "data"), **env}
    return subprocess.run([sys.executable, "-c", AS_THE_APP_LOGS, *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_mask_url_and_text() -> None:
    assert mask_url(f"https://u:{SECRET}@gw.example/v1?api-version=2024&api-key={SECRET}&x=1") == \
        "https://***@gw.example/v1?api-version=2024&api-key=***&x=1"
    assert mask_url(f"https://gw.example/v1?token={SECRET}") == "https://gw.example/v1?token=***"
    text = f'POST http://user:{SECRET}@h/v1/embeddings "200" and Bearer {KEY} in a body'
    assert _leaks(mask_text(text)) == []


def test_userinfo_in_the_base_url_never_reaches_the_logs(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=None) as server:  # a proxy that takes basic auth from the URL
        base = server.base_url.replace("http://", f"http://proxyuser:{SECRET}@")
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base}
        proc = _rag_logged(env, "embed", "ベクトルとは", "--json", cwd=tmp_path)
        assert server.embedding_calls()  # the request really went out
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HTTP Request: POST http://***@127.0.0.1" in proc.stderr  # logged, masked
    assert _leaks(proc.stderr + proc.stdout) == [] and "proxyuser" not in proc.stderr


def test_a_key_in_the_base_url_query_is_masked_everywhere(tmp_path: Path, monkeypatch,
                                                          capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{free_port()}/v1?api-key={SECRET}"  # nobody listens there
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", base)
    monkeypatch.setenv("RAG_OPENAI_MAX_RETRIES", "0")
    get_settings.cache_clear()
    assert main(["doctor", "--json"]) == 1
    report = capsys.readouterr().out
    assert json.loads(report)["settings"]["openai_base_url"].endswith("/v1?api-key=***")
    assert main(["doctor"]) == 1  # "settings in force (secrets masked)"
    human = capsys.readouterr().out
    assert main(["embed", "text", "--json"]) == 1
    error = capsys.readouterr().out
    assert "Cannot reach" in json.loads(error)["error"]
    for shown in (report, human, error, caplog.text):
        assert _leaks(shown) == [], shown
    proc = _rag_logged({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base, "RAG_OPENAI_MAX_RETRIES": "0"},
                       "embed", "text", cwd=tmp_path)
    assert proc.returncode == 1 and _leaks(proc.stdout + proc.stderr) == []


def test_the_app_page_masks_the_query_key(corpus: Path, local_model, monkeypatch) -> None:
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}?api-key={SECRET}")
        monkeypatch.setenv("RAG_EMBEDDING_PROVIDER", "local")
        monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus))
        get_settings.cache_clear()
        at = finish_first_start(AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run())
    shown = "\n".join(str(e.value) for kind in ("markdown", "caption", "error", "info", "success")
                      for e in [*at.get(kind), *at.sidebar.get(kind)])
    assert "api-key=***" in shown
    assert _leaks(shown) == []


@pytest.mark.parametrize("status", [400, 401, 500])
def test_an_error_body_repeating_the_key_is_masked(status: int, tmp_path: Path) -> None:
    with FakeOpenAI(api_key=KEY) as server:
        server.fail_next(status, times=10, body={"error": {
            "message": f"Incorrect API key provided: {KEY}. Your request was {{'key': '{KEY}'}}",
            "type": "invalid_request_error", "code": "invalid_api_key"}})
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url, "RAG_OPENAI_MAX_RETRIES": "0"}
        for args in (["embed", "text", "--json"], ["embed", "text"], ["doctor", "--json"]):
            proc = _rag_logged(env, *args, cwd=tmp_path)
            assert proc.returncode == 1, proc.stderr[-2000:]
            assert "Traceback" not in proc.stderr
            assert _leaks(proc.stdout + proc.stderr) == [], proc.stdout + proc.stderr
