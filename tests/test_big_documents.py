"""A document of more chunks than Chroma takes in one write (5,461) is stored whole, with its
neighbours, and replaced and deleted whole. Real `rag` processes, real Chroma (embedded and a
server), the fake OpenAI server for fast embeddings (the local model would take minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fake_openai import FakeOpenAI

SECTIONS = 6_000


def _run(env: dict[str, str], *args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "rag", *args, "--json"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def _big(version: str) -> str:
    return "".join(f"## Section {i}\n\nItem {i} of the {version} catalogue is widget-{i}-{version}.\n\n"
                   for i in range(SECTIONS))


@pytest.fixture
def env(tmp_path: Path, store_mode: str) -> dict[str, str]:
    with FakeOpenAI(api_key="sk-test-0123456789abcdef", dims=32) as server:
        yield {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": server.api_key or "",
               "OPENAI_BASE_URL": server.base_url, "RAG_OPENAI_EMBEDDING_DIMS": "32",
               "RAG_DATA_DIR": str(tmp_path / "data")}


def test_a_document_over_the_max_batch_is_stored_replaced_and_deleted_whole(
        tmp_path: Path, env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-small.md").write_text("# Sushi\n\nSushi is vinegared rice with fish.\n", encoding="utf-8")
    (docs / "big.md").write_text(_big("spring"), encoding="utf-8")
    (docs / "z-small.txt").write_text("Tempura is battered and fried.", encoding="utf-8")

    code, data = _run(env, "ingest", str(docs))
    assert code == 0, data
    assert data["chunks"]["added"] == SECTIONS + 2 and data["files"]["read"] == 3
    code, stats = _run(env, "stats")
    assert stats["collections"][0]["count"] == SECTIONS + 2
    code, found = _run(env, "search", "widget-5999-spring", "--mode", "bm25", "-k", "1")
    assert found["hits"][0]["source"] == "big.md" and "widget-5999-spring" in found["hits"][0]["text"]

    (docs / "big.md").write_text(_big("autumn"), encoding="utf-8")
    code, data = _run(env, "ingest", str(docs))
    assert code == 0, data
    assert data["chunks"]["added"] == SECTIONS and data["chunks"]["deleted"] == SECTIONS
    code, stats = _run(env, "stats")
    assert stats["collections"][0]["count"] == SECTIONS + 2
    code, found = _run(env, "search", "widget-5999-spring", "--mode", "bm25", "-k", "3")
    assert all("spring" not in h["text"] for h in found["hits"])

    code, data = _run(env, "delete", "big.md")
    assert code == 0 and data["deleted"] == SECTIONS
    code, stats = _run(env, "stats")
    assert stats["collections"][0]["count"] == 2
