"""The chat: history per browser session, streamed answers, sources and the debug panel.

Each assistant turn keeps its `Answer`, so sources, scores and the debug panel can be redrawn on
every rerun without searching again. Errors never reach the user as a traceback: domain errors are
shown as they are (their messages say what to fix), anything else as a short note, logged in full.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from rag.answer.answerer import EXTRACTIVE_LABEL, Answer
from rag.config import Settings
from rag.errors import EmptyStoreError
from rag.retrieve.options import SearchOptions
from rag.ui import state
from rag.ui.citations import render_answer_text
from rag.ui.conversations import render_feedback, save_exchange
from rag.ui.debug_panel import render_debug_panel
from rag.ui.first_start import indexing_note
from rag.ui.i18n import both, lang_of, t
from rag.ui.safe_text import literal_markdown
from rag.ui.sources import render_sources
from rag.ui.trust_panel import render_trust_panel
from rag.visible import has_visible_text

log = logging.getLogger(__name__)

HISTORY_TURNS = 6
"""Messages of history sent to the LLM to rewrite a follow-up question."""
DEBUG_LABEL = "🔍 埋め込みを見る / Show me the embedding"



@contextmanager
def user_errors(lang: str = "en") -> Iterator[None]:
    """Show failures as `st.error` messages, never as a traceback."""
    try:
        yield
    except EmptyStoreError:  # in the question's language: we wrote this message
        st.error(t("empty_store", lang))
    except Exception as exc:
        from pydantic import ValidationError

        from rag.failures import explain
        from rag.secrets import mask_text

        if isinstance(exc, ValidationError):
            st.error("Invalid settings / 設定が不正です: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()))
            return
        error = explain(exc, _settings_or_none())
        if error is not None:
            st.error(mask_text(str(error)))
            return
        log.exception("unexpected error in the app")
        st.error(t("unexpected", lang, kind=type(exc).__name__))


def _settings_or_none() -> Settings | None:
    try:
        return state.settings()
    except Exception:  # the settings themselves are what failed
        return None


def _stream_as_text(pieces: Iterator[str]) -> str:
    """Show an answer as it streams, as text: a quoted link or image never goes live."""
    box = st.empty()
    shown = ""
    for piece in pieces:
        shown += piece
        box.markdown(literal_markdown(shown))
    return shown


def _user_message(exc: Exception, lang: str) -> str:
    """What the chat history keeps for a failed turn: the fix, masked, or a short note."""
    from rag.failures import explain
    from rag.secrets import mask_text

    if isinstance(exc, EmptyStoreError):
        return t("empty_store", lang)
    error = explain(exc, _settings_or_none())
    return mask_text(str(error)) if error is not None else t("unexpected", lang, kind=type(exc).__name__)


def messages() -> list[dict[str, Any]]:
    return st.session_state.setdefault("messages", [])


def render_chat(settings: Settings, controls: SearchOptions) -> None:
    history = messages()
    if not history:
        _render_welcome(settings)
    for i, msg in enumerate(history):
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(literal_markdown(msg["content"]))
            else:
                _render_assistant(msg, i, latest=i == len(history) - 1)
                render_feedback(settings, msg)
    question = st.chat_input("質問をどうぞ（日本語 / English）", key="question")
    if question and has_visible_text(question):
        _ask(settings, controls, question.strip())


def _render_welcome(settings: Settings) -> None:
    if state.get_searcher(settings).count() == 0 and indexing_note(settings, "en") is None:
        st.info(
            "まだ文書がありません。サイドバーからファイルを追加するか、`rag ingest PATH` を実行してください。\n\n"
            "No documents yet: add files in the sidebar, or run `rag ingest PATH`, then ask here."
        )
    else:
        st.caption(both("文書について日本語か英語で質問してください", "Ask about your documents in Japanese or English"))


def _render_assistant(msg: dict[str, Any], index: int, *, latest: bool) -> None:
    answer: Answer | None = msg.get("answer")
    if msg.get("error"):
        st.error(msg["error"])
        return
    if answer is None:
        st.markdown(literal_markdown(msg["content"]))
        return
    _render_caption(answer)
    _render_text(answer, key=f"answer_{index}")
    if msg.get("note"):
        st.caption(msg["note"])
    _render_extras(answer, index, latest=latest)


def _render_text(answer: Answer, *, key: str) -> None:
    """The answer with clickable citations; "not in the documents" (with its reason) as a notice,
    the nearest chunks below."""
    if answer.not_found:
        st.info(literal_markdown(answer.text), icon="🔎")  # may quote an LLM or the question
    else:
        render_answer_text(answer, key=key)


def _render_caption(answer: Answer) -> None:
    lang = answer.lang
    if answer.mode == "extractive":
        st.caption(EXTRACTIVE_LABEL[lang])
    else:
        st.caption(f"{t('llm_answer', lang)}: `{answer.llm}`")
        if answer.standalone_question != answer.question:
            st.caption(f"{t('rewritten', lang)}: {literal_markdown(answer.standalone_question)}")


def _render_extras(answer: Answer, index: int, *, latest: bool) -> None:
    """Sources, trust and debug panels, collapsed, so the answer above stays in view."""
    render_sources(answer, expanded=False, key=f"sources_{index}")
    render_trust_panel(answer, key=f"trust_{index}")
    with st.expander(DEBUG_LABEL, expanded=False):
        with user_errors(answer.lang):
            render_debug_panel(answer, key=f"debug_{index}")


def _job_counts(settings: Settings) -> dict[str, object]:
    from rag.ingest.background import current_job

    job = current_job(settings, state.get_searcher(settings).info.collection_name)
    status = job.status() if job is not None else None
    return {"done": status.files_done if status else 0, "total": status.files_total if status else "?"}


def _ask(settings: Settings, controls: SearchOptions, question: str) -> None:
    history = messages()
    lang = lang_of(question)
    previous = [
        {"role": m["role"], "content": m["content"]}
        for m in history if m.get("content") and not m.get("error")
    ][-HISTORY_TURNS:]
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(literal_markdown(question))
    note = indexing_note(settings, lang)
    if note is not None and state.get_searcher(settings).count() == 0:
        waiting = t("indexing_empty", lang, **_job_counts(settings))
        history.append({"role": "assistant", "content": waiting})
        with st.chat_message("assistant"):
            st.info(waiting)
        return
    with st.chat_message("assistant"):
        final: list[Answer] = []
        failed: list[str] = []
        with user_errors(lang):
            try:
                answerer = state.get_answerer(settings)
                if answerer.info.mode == "extractive":
                    st.caption(EXTRACTIVE_LABEL[lang])
                else:
                    st.caption(f"{t('llm_answer', lang)}: `{answerer.info.model}`")

                def pieces() -> Iterator[str]:
                    for item in answerer.stream(
                        question, history=previous, options=controls,
                    ):
                        if isinstance(item, Answer):
                            final.append(item)
                        else:
                            yield item

                slot = st.empty()
                with slot.container(), st.spinner(t("thinking", lang)):
                    _stream_as_text(pieces())
            except Exception as exc:
                failed.append(_user_message(exc, lang))
                raise
        if failed or not final:
            history.append({"role": "assistant", "content": "", "error": failed[0] if failed else "?"})
            save_exchange(settings, question, history[-1])
            return
        answer = final[0]
        history.append({"role": "assistant", "content": answer.text, "answer": answer, "note": note})
        save_exchange(settings, question, history[-1])
        with slot.container():  # the streamed text again, now with clickable citations
            _render_text(answer, key=f"answer_{len(history) - 1}")
        if answer.standalone_question != answer.question:
            st.caption(f"{t('rewritten', lang)}: {literal_markdown(answer.standalone_question)}")
        if note:
            st.caption(note)
        _render_extras(answer, len(history) - 1, latest=True)
        render_feedback(settings, history[-1])
