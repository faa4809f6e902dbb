"""The precomputed e5 vectors of docs_corpus/: complete, equal to the engine's own, and used only
for the exact texts they were made from."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.config import Settings, get_settings
from rag.embed.bundled import BUNDLE, bundle, engine_id
from rag.embed.cache import key_of
from rag.embed.providers import get_embeddings, resolve
from rag.ingest.chunking import split_documents
from rag.ingest.loaders import FoundFile, discover, load
from tests.conftest import REPO


def corpus_chunks(root: Path) -> list[str]:
    settings = Settings()
    texts = []
    for item in discover([root]):
        if isinstance(item, FoundFile):
            docs = load(item, item.path.read_bytes())
            texts += [c.page_content for c in split_documents(docs, settings.chunk_size, settings.chunk_overlap)]
    return texts


@pytest.fixture
def e5_env(monkeypatch: pytest.MonkeyPatch, e5_model) -> Settings:
    monkeypatch.setenv("RAG_EMBEDDING_PROVIDER", "e5")
    get_settings.cache_clear()
    return get_settings()


def test_the_bundle_covers_docs_corpus_and_matches_the_engine(e5_model) -> None:
    found = bundle()
    assert found is not None, f"{BUNDLE} is missing or was made by another engine than {engine_id()}"
    keys, vectors = found
    shipped = {bytes(k): v for k, v in zip(keys, vectors, strict=True)}
    texts = corpus_chunks(REPO / "docs_corpus")
    missing = [t[:40] for t in texts if key_of(t) not in shipped]
    assert not missing, f"docs_corpus changed: run scripts/precompute_e5.py ({len(missing)} chunks new)"
    for text in (texts[0], texts[len(texts) // 2], texts[-1]):
        assert np.allclose(shipped[key_of(text)], e5_model.passage(text), atol=1e-5)


def test_first_ingest_uses_them_and_an_edited_text_is_embedded_for_real(
        tmp_path: Path, e5_env: Settings, e5_model) -> None:
    from rag.ingest.pipeline import Ingestor

    root = tmp_path / "corpus"
    (root / "ja").mkdir(parents=True)
    shutil.copy(REPO / "docs_corpus/ja/01_embedding_toha.md", root / "ja")
    edited = (REPO / "docs_corpus/ja/04_jigen_sakugen.md").read_text(encoding="utf-8")
    edited = edited.replace("。", "。 ", 1)  # one space more: another text, another key
    (root / "ja" / "04_jigen_sakugen.md").write_text(edited, encoding="utf-8")

    # the cache is prefilled as soon as e5 is in use, before anything is embedded
    cache = get_embeddings(e5_env)
    keys, vectors = bundle() or ([], [])
    shipped = {bytes(k): v for k, v in zip(keys, vectors, strict=True)}
    copied = corpus_chunks(root / "ja" / "01_embedding_toha.md")
    assert all(cache.has(key_of(t)) for t in copied)
    changed = [t for t in corpus_chunks(root / "ja" / "04_jigen_sakugen.md") if key_of(t) not in shipped]
    assert changed and not any(cache.has(key_of(t)) for t in changed)

    assert not Ingestor(e5_env).ingest([root]).failed
    coll = store.collection(e5_env, resolve(e5_env))
    got = coll.get(include=["documents", "embeddings"])
    stored = dict(zip(got["documents"], got["embeddings"], strict=True))
    for text in copied:
        assert np.allclose(stored[text], shipped[key_of(text)], atol=1e-6)
    for text in changed:  # computed by the engine, not looked up
        assert np.allclose(stored[text], e5_model.passage(text), atol=1e-5)


def test_they_can_be_turned_off(e5_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    keys, _ = bundle() or ([], [])
    monkeypatch.setenv("RAG_E5_BUNDLED_VECTORS", "false")
    get_settings.cache_clear()
    assert not get_embeddings(get_settings()).has(bytes(keys[0]))
    monkeypatch.delenv("RAG_E5_BUNDLED_VECTORS")
    get_settings.cache_clear()
    assert get_embeddings(get_settings()).has(bytes(keys[0]))
