"""Long-lived objects for the Streamlit app, cached once per process and keyed by settings.

`st.cache_resource` keeps the Searcher and Answerer (and through them the embedding model and the
Chroma client) alive across reruns and browser sessions. The cache key is a digest of every
setting, secrets included, so changing a key, model or data dir gets fresh objects and two data
dirs never share one. Per-browser state (chat history) lives in `st.session_state`, not here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from rag.config import Settings, get_settings

if TYPE_CHECKING:
    from rag.answer.answerer import Answerer
    from rag.lens.nexttoken import NextTokenModel
    from rag.retrieve.searcher import Searcher


def settings() -> Settings:
    """The settings in force (read once per process by `get_settings`)."""
    return get_settings()


def settings_key(s: Settings) -> str:
    """A digest of all settings, secrets included, so a changed key means new cached objects."""
    dumped = s.model_dump(mode="python")
    if s.openai_api_key is not None:
        dumped["openai_api_key"] = s.openai_api_key.get_secret_value()
    raw = json.dumps(dumped, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def get_searcher(s: Settings | None = None) -> Searcher:
    """The process-wide Searcher for these settings (loads the embedder on first use)."""
    s = s or settings()
    return _searcher(settings_key(s), s)


def get_answerer(s: Settings | None = None) -> Answerer:
    """The process-wide Answerer for these settings; it shares `get_searcher`'s Searcher."""
    s = s or settings()
    return _answerer(settings_key(s), s)


@st.cache_resource(show_spinner="埋め込みモデルを読み込み中… / Loading the embedding model…")
def _searcher(key: str, _settings: Settings) -> Searcher:
    from rag.retrieve.searcher import Searcher
    from rag.retrieve.watch import watch

    searcher = Searcher(_settings)
    watch(searcher)  # on a shared server, another machine's writes are indexed between questions
    return searcher


@st.cache_resource(show_spinner=False)
def _answerer(key: str, _settings: Settings) -> Answerer:
    from rag.answer.answerer import Answerer

    return Answerer(_settings, searcher=_searcher(key, _settings))


def get_next_token_model(s: Settings | None = None) -> NextTokenModel:
    """The process-wide Gemma 3 270M for the Next-token page (converted once, then memory-mapped)."""
    s = s or settings()
    return _next_token_model(str(s.lm_cache_dir.resolve()))


@st.cache_resource(show_spinner="言語モデルを読み込み中…（初回のみ GGUF を変換、1 分ほど） / Loading the "
                                "language model… (the first time converts the GGUF once, about a minute)")
def _next_token_model(path: str) -> NextTokenModel:
    from rag.lens.nexttoken import load_model

    return load_model(Path(path))
