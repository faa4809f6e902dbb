"""RAG Lens, the Streamlit app: wiring only. Run with `make run` (or `streamlit run app.py`).

Pages: the chat (sidebar controls and saved conversations, streamed answers, sources with scores,
the embedding debug panel), the Explorer (the corpus map), Next token (a local language model's
odds and word vectors) and Documents (what is ingested). Everything else lives in `rag/` and
`rag/ui/`.
The `rag` modules are imported inside the pages, behind a labelled spinner: importing them
takes a few seconds the first time in a process, and the page should say what it is doing
rather than stay blank.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

BUNDLED_CORPUS = Path(__file__).resolve().parent / "docs_corpus"
STARTING = "起動中（ライブラリを読み込んでいます）… / Starting: loading libraries…"

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _prepare() -> None:
    from rag.ui import state
    from rag.ui.first_start import ensure_corpus

    settings = state.settings()
    ensure_corpus(settings, settings.corpus_dir or BUNDLED_CORPUS)


def chat_page() -> None:
    with st.spinner(STARTING):
        from rag.ui import state
        from rag.ui.chat import render_chat, user_errors
        from rag.ui.conversations import render_conversations
        from rag.ui.sidebar import render_sidebar
    with user_errors():
        _prepare()
        settings = state.settings()
        # the uploader stays on the sidebar's first screen; the saved chats follow it
        render_chat(settings, render_sidebar(settings, then=lambda: render_conversations(settings)))


def explorer_page() -> None:
    with st.spinner(STARTING):
        from rag.ui.chat import user_errors
        from rag.ui.explorer import render_explorer
    with user_errors():
        _prepare()
        render_explorer()


def next_token_page() -> None:
    with st.spinner(STARTING):
        from rag.ui.chat import user_errors
        from rag.ui.nexttoken import render_next_token_page
    with user_errors():
        render_next_token_page()


def documents_page() -> None:
    with st.spinner(STARTING):
        from rag.ui import state
        from rag.ui.chat import user_errors
        from rag.ui.documents import render_documents
    with user_errors():
        _prepare()
        render_documents(state.settings())


st.set_page_config(page_title="RAG Lens", page_icon="🔎", layout="wide")
st.navigation([
    st.Page(chat_page, title="チャット / Chat", icon="💬", url_path="chat", default=True),
    st.Page(explorer_page, title="エクスプローラー / Explorer", icon="🗺️", url_path="explorer"),
    st.Page(next_token_page, title="次トークン / Next token", icon="🔮", url_path="next-token"),
    st.Page(documents_page, title="文書 / Documents", icon="📄", url_path="documents"),
]).run()
