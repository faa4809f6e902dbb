"""Shared fixtures: an isolated environment per test, the real local model, a fake OpenAI server,
a Chroma server, and small bilingual corpora written in the encodings users really have."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import store
from rag.config import Settings, get_settings
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
_ENV_PREFIXES = ("RAG_", "OPENAI_", "CHROMA_")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data dir and cwd, and no settings leak in from the shell or .env."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    # Tests not about the offline model use the fastest one (USE, 20-30x faster to embed than e5);
    # tests of e5 ask for it by name (`RAG_EMBEDDING_PROVIDER=e5`) or unset this.
    monkeypatch.setenv("RAG_LOCAL_MODEL", "use")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    store.reset_clients()
    yield data_dir
    get_settings.cache_clear()
    store.reset_clients()


@pytest.fixture(scope="session")
def local_model():
    """The real USE model, loaded once for the whole session (about 4 s)."""
    from rag.embed.providers import load_local_model

    return load_local_model()


@pytest.fixture(scope="session")
def e5_model():
    """The real multilingual-e5-small engine, loaded once for the whole session (about 0.05 s)."""
    from rag.embed.e5 import load_e5_model

    return load_e5_model()


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return get_settings()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test-0123456789abcdef") as server:
        yield server


@pytest.fixture
def openai_env(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """Settings pointing the real OpenAI client at the fake server, with fast retries."""
    monkeypatch.setenv("OPENAI_API_KEY", fake_openai.api_key or "")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("RAG_OPENAI_TIMEOUT_S", "5")
    monkeypatch.setenv("RAG_OPENAI_MAX_RETRIES", "2")
    get_settings.cache_clear()
    return fake_openai


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(cmd: list[str], ready_url: str, log_path: Path, *, timeout: float = 60,
                  **popen: object) -> subprocess.Popen:
    """Start a server and wait until `ready_url` answers; its log is the error if it never does."""
    import urllib.request

    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **popen)
    log.close()
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(ready_url, timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{cmd[0]} did not start:\n"
                                   + log_path.read_text(errors="replace")) from None
            time.sleep(0.3)


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on 127.0.0.1, for the server-mode variants of store tests."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    proc = start_process(
        [chroma, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v2/heartbeat", path / "server.log",
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    yield "127.0.0.1", port
    stop_process(proc)


@pytest.fixture
def shared(chroma_server: tuple[str, int], openai_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch):
    """This process on the `chroma_server` too (for its long-lived Searcher), the server emptied first."""
    from rag.ingest.pipeline import reset

    monkeypatch.setenv("CHROMA_HOST", chroma_server[0])
    monkeypatch.setenv("CHROMA_PORT", str(chroma_server[1]))
    get_settings.cache_clear()
    reset(get_settings())
    return chroma_server


@pytest.fixture(params=["embedded", "server"])
def store_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test against the embedded store and against a Chroma server."""
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        monkeypatch.setenv("CHROMA_HOST", host)
        monkeypatch.setenv("CHROMA_PORT", str(port))
        get_settings.cache_clear()
        # a shared server outlives the test: give each test its own collections
        from rag.ingest.pipeline import reset

        reset(get_settings())
    return request.param


NEKO = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
SUSHI = "寿司は酢飯に魚介類を合わせた日本の料理です。江戸時代に屋台で握り寿司が広まりました。"
COSINE_EN = (
    "# Cosine similarity\n\nCosine similarity measures the angle between two vectors. "
    "For unit vectors it equals the dot product.\n\n## Distance\n\nChroma returns the cosine "
    "distance, which is one minus the similarity.\n"
)
HTML = (
    "<html><head><title>Tokens</title><style>body{color:red}</style>"
    "<script>var secret='SCRIPT_TEXT_MUST_NOT_BE_INDEXED';</script></head>"
    "<body><h1>Token IDs</h1><p>A tokenizer turns text into integer token IDs before the model "
    "sees it.</p></body></html>"
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small bilingual folder: Shift_JIS, EUC-JP, UTF-8 with BOM, Markdown and HTML."""
    root = tmp_path / "corpus"
    (root / "ja").mkdir(parents=True)
    (root / "ja" / "neko_sjis.txt").write_bytes(NEKO.encode("cp932"))
    (root / "ja" / "sushi_eucjp.txt").write_bytes(SUSHI.encode("euc_jp"))
    (root / "bom.txt").write_bytes("\ufeffベクトルは数値の並びです。埋め込みは意味を表します。".encode())
    (root / "cosine.md").write_text(COSINE_EN, encoding="utf-8")
    (root / "tokens.html").write_text(HTML, encoding="utf-8")
    (root / ".hidden.txt").write_text("hidden files are skipped", encoding="utf-8")
    (root / "notes.rtf").write_text("{\\rtf1 a}", encoding="utf-8")
    return root


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item, so fixtures can save artifacts on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def finish_first_start(at, timeout: float = 120):
    """Wait for the app's background first-start ingest (if its first run started one), then run
    the script once more, as a person's next click would, so the page shows the store it made."""
    from rag.embed.providers import resolve
    from rag.ingest.background import current_job

    job = current_job(get_settings(), resolve(get_settings()).collection_name)
    if job is not None:
        assert job.wait(timeout).phase == "done", job.status()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at
