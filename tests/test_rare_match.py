"""An exact match of a rare token is never lost to the cross-script credit in hybrid mode.

A Japanese manual lists 40 hex error codes; an ASCII-only query ("0x3FA2", "error 0x3FA2") is
"English", so every Japanese chunk is cross-script, and the credit used to replace their BM25
scores (the exact match included) by 0.9 x their vector score: BM25 found 40/40, hybrid 27/40.
Real Chroma, the real model, the bundled corpus beside the manual.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings, get_settings
from rag.ingest.pipeline import Ingestor
from rag.retrieve.hybrid import fuse
from rag.retrieve.searcher import Searcher
from tests.conftest import REPO

REMEDIES = ["電源を入れ直してください", "ケーブルの接続を確認してください", "管理者に連絡してください",
            "ファームウェアを更新してください", "設定を初期化してください",
            "しばらく待ってから再試行してください", "ディスクの空き容量を確認してください"]
WHEN = ["起動時", "印刷中", "通信中", "更新中"]


@pytest.fixture(params=["use", "e5"])
def manual(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The manual beside docs_corpus, ingested with USE (where codes were lost) and with e5."""
    request.getfixturevalue("local_model" if request.param == "use" else "e5_model")
    monkeypatch.setenv("RAG_LOCAL_MODEL", request.param)
    get_settings.cache_clear()
    rng = random.Random(7)
    codes = [f"0x{rng.randrange(0x1000, 0xFFFF):04X}" for _ in range(40)]
    sections = [f"## {code}\n\nエラー {code} が表示されたときは、{rng.choice(REMEDIES)}。"
                f"この症状は装置の{rng.choice(WHEN)}に発生します。\n\n" for code in codes]
    root = tmp_path / "docs"
    shutil.copytree(REPO / "docs_corpus", root)
    (root / "manual.md").write_text("# エラーコード一覧\n\n" + "".join(sections), encoding="utf-8")
    Ingestor(get_settings()).ingest([root])
    return codes


@pytest.mark.parametrize("template", ["{}", "error {}"])
def test_ascii_code_query_finds_its_japanese_section(manual: list[str], template: str) -> None:
    searcher = Searcher(get_settings())
    for mode in ("bm25", "hybrid"):
        wrong = [code for code in manual
                 if code not in searcher.search(template.format(code), k=5, mode=mode).hits[0].text]
        assert wrong == [], (mode, template)


def test_cross_script_credit_never_lowers_a_real_match() -> None:
    cosine = np.array([0.1, 0.9, 0.5])  # an exact keyword match with a poor vector, two paraphrases
    bm25 = np.array([9.0, 0.0, 1.0])
    ranks = np.array([3, 1, 2]), np.array([1, 0, 2])
    settings = Settings(hybrid_vector_weight=0.2, hybrid_cross_script_weight=0.9)
    fused = fuse(cosine, bm25, *ranks, settings, cross_script=np.array([True, True, True]))
    lexical = (fused - 0.2 * np.array([0.0, 1.0, 0.5])) / 0.8
    assert lexical[0] == pytest.approx(1.0)  # its own BM25, not 0.9 x its vector (0.0)
    assert lexical[1] == pytest.approx(0.9)  # credited: BM25 had nothing to say
    assert lexical[2] == pytest.approx(max(0.9 * 0.5, 1 / 9))


def test_a_rare_cross_script_match_is_never_cut_from_the_hits(manual: list[str]) -> None:
    # "manual" is common English; the code is rare. Even at k=1 the code's section stays.
    searcher = Searcher(get_settings())
    for code in manual[:10]:
        for k in (1, 3):
            hits = searcher.search(f"manual troubleshooting guide for error {code}", k=k,
                                   mode="hybrid").hits
            assert any(code in h.text for h in hits), (code, k, [(h.source, h.text[:30], h.bm25_score) for h in hits])
