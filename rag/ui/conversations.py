"""Saved conversations in the app: the sidebar list (new, open, rename, delete, export) and feedback.

The chat page keeps its messages in `st.session_state["messages"]` as before; this module fills
that list from `rag.chats` when a chat is opened from the sidebar, writes each finished exchange
back, and draws 👍/👎 and right/wrong per source under every saved answer. The open chat's id is in
the URL (`?chat=…`), so reloading the tab or restarting `streamlit run` brings it back; a fresh
visit starts a new chat, as chat apps do, with the saved ones listed. `chat_id` None means a new
chat not saved yet: it is created by its first question and titled after it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from rag.chats import LOCAL_USER, ChatStore, Turn, export_dict, export_markdown
from rag.config import Settings
from rag.ui.i18n import both, t
from rag.ui.safe_text import literal_line

CHAT_KEY = "chat_id"
URL_KEY = "chat"
MAX_LISTED = 50
"""Chats shown in the sidebar, newest first; `rag chats list` shows them all."""
_VERDICTS = {"right": "✓", "wrong": "✗"}


@st.cache_resource(show_spinner=False)
def _store(path: str) -> ChatStore:
    from pathlib import Path

    return ChatStore(Path(path))


def chat_store(settings: Settings) -> ChatStore:
    from rag.chats import chats_path

    return _store(str(chats_path(settings)))


def current_user() -> str:
    """The signed-in user's email when the app has a login (`st.login`), else one local user."""
    try:
        email = st.user.get("email")
    except Exception:  # no auth configured: st.user has nothing to say
        email = None
    return str(email) if email else LOCAL_USER


def _as_message(turn: Turn) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": turn.role, "content": turn.content, "turn_id": turn.id}
    if turn.answer is not None:
        msg["answer"] = turn.answer
    if turn.error:
        msg["error"] = turn.error
    return msg


def _load(settings: Settings, chat_id: str | None) -> None:
    """Make `chat_id` the open chat, its turns the session's messages, its feedback the widgets'."""
    _open(chat_id)
    turns = chat_store(settings).turns(chat_id) if chat_id else []
    st.session_state["messages"] = [_as_message(turn) for turn in turns]
    for turn in turns:
        st.session_state[f"rating_{turn.id}"] = {1: 1, -1: 0}.get(turn.rating or 0)
        if turn.answer is not None:
            for hit in turn.answer.search.hits:
                st.session_state[f"verdict_{turn.id}_{hit.rank}"] = turn.sources.get(hit.rank)


def _open(chat_id: str | None) -> None:
    st.session_state[CHAT_KEY] = chat_id
    if chat_id:
        st.query_params[URL_KEY] = chat_id
    else:
        st.query_params.pop(URL_KEY, None)


def restore(settings: Settings) -> None:
    """On a browser session's first run, reopen the chat named in the URL (one of this user's)."""
    if CHAT_KEY in st.session_state:
        return
    wanted = st.query_params.get(URL_KEY)
    mine = {c.id for c in chat_store(settings).list(current_user())}
    _load(settings, wanted if wanted in mine else None)


def start_new() -> None:
    _open(None)
    st.session_state["messages"] = []


def save_exchange(settings: Settings, question: str, reply: dict[str, Any]) -> None:
    """Store a question and its reply (answer or error) in the open chat, creating it if new."""
    chats = chat_store(settings)
    chat_id = st.session_state.get(CHAT_KEY)
    if not chat_id:
        chat_id = chats.create(current_user(), question).id
        _open(chat_id)
    chats.add_turn(chat_id, "user", question)
    reply["turn_id"] = chats.add_turn(chat_id, "assistant", reply.get("content", ""),
                                      answer=reply.get("answer"), error=reply.get("error"))


def render_conversations(settings: Settings) -> None:
    """The sidebar's chat list: new, open, and for the open chat rename, delete, export."""
    restore(settings)
    chats = chat_store(settings)
    listed = chats.list(current_user())
    open_id = st.session_state.get(CHAT_KEY)
    with st.sidebar:
        st.subheader(both("会話", "Conversations"))
        st.button(f"＋ {both('新しい会話', 'New chat')}", key="clear_chat", width="stretch",
                  on_click=start_new)
        for chat in listed[:MAX_LISTED]:
            current = chat.id == open_id
            st.button(("▶ " if current else "") + chat.title, key=f"open_{chat.id}", width="stretch",
                      type="primary" if current else "secondary", on_click=_load, args=(settings, chat.id))
        if open_id and any(c.id == open_id for c in listed):
            _render_manage(settings, chats, open_id, next(c.title for c in listed if c.id == open_id))
        st.divider()


def _render_manage(settings: Settings, chats: ChatStore, chat_id: str, title: str) -> None:
    with st.expander(both("この会話", "This chat"), expanded=False):
        st.text_input(both("名前", "Name"), value=title, key=f"title_{chat_id}",
                      on_change=lambda: chats.rename(chat_id, st.session_state[f"title_{chat_id}"]))
        left, right = st.columns(2)
        left.download_button(
            "⬇ Markdown", data=lambda: export_markdown(chats, chat_id), file_name=f"chat-{chat_id}.md",
            mime="text/markdown", key="export_md", on_click="ignore", width="stretch")
        right.download_button(
            "⬇ JSON", data=lambda: _json(chats, chat_id), file_name=f"chat-{chat_id}.json",
            mime="application/json", key="export_json", on_click="ignore", width="stretch")
        st.button(f"🗑 {both('削除', 'Delete')}", key="delete_chat", width="stretch",
                  on_click=_delete, args=(settings, chat_id))


def _json(chats: ChatStore, chat_id: str) -> str:
    import json

    return json.dumps(export_dict(chats, chat_id), ensure_ascii=False, indent=2)


def _delete(settings: Settings, chat_id: str) -> None:
    chats = chat_store(settings)
    chats.delete(chat_id)
    rest = chats.list(current_user())
    _load(settings, rest[0].id if rest else None)


def render_feedback(settings: Settings, msg: dict[str, Any]) -> None:
    """👍/👎 for a saved answer, and right/wrong for each of its sources."""
    turn_id = msg.get("turn_id")
    answer = msg.get("answer")
    if turn_id is None or answer is None:
        return
    chats = chat_store(settings)
    key = f"rating_{turn_id}"
    lang = answer.lang
    thumbs, sources = st.columns([1, 4], vertical_alignment="center")
    with thumbs:
        st.feedback("thumbs", key=key, on_change=lambda: chats.rate(
            turn_id, {1: 1, 0: -1}.get(st.session_state.get(key))))  # type: ignore[arg-type]
    with sources.popover(t("rate_sources", lang)):
        for hit in answer.search.hits:
            vkey = f"verdict_{turn_id}_{hit.rank}"
            st.segmented_control(
                f"[{hit.rank}] {literal_line(hit.source)}", list(_VERDICTS), key=vkey,
                format_func=lambda v: f"{_VERDICTS[v]} {t('source_' + v, lang)}",
                on_change=_judge, args=(chats, turn_id, hit.rank, hit.source, vkey),
            )


def _judge(chats: ChatStore, turn_id: int, rank: int, source: str, key: str) -> None:
    chats.judge_source(turn_id, rank, source, st.session_state.get(key))
