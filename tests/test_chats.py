"""Conversations that last: the chat store, its exports, the app restoring them, feedback to eval.

Answers come from the real Answerer over real Chroma and the real local model; the app runs
through Streamlit's AppTest, and a second AppTest on the same data dir stands for a restart (the
browser test does the same with `streamlit run`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.answer.answerer import Answerer
from rag.chats import (
    ChatNotFoundError,
    ChatStore,
    answer_from_dict,
    answer_to_dict,
    export_dict,
    export_markdown,
)
from rag.cli import main
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.ui.chat import DEBUG_LABEL
from tests.conftest import REPO, finish_first_start
from tests.test_app import answer_text

TIMEOUT = 120


@pytest.fixture
def answerer(corpus: Path, local_model) -> Answerer:
    Ingestor(get_settings()).ingest([corpus])
    return Answerer(get_settings())


def test_a_stored_answer_comes_back_whole(answerer: Answerer) -> None:
    answer = answerer.answer("猫の名前は何ですか？", mode="hybrid")
    chats = ChatStore.of(get_settings())
    chat = chats.create("alice", "猫の名前は何ですか？ " + "とても長い質問" * 10)
    assert chat.title.endswith("…") and len(chat.title) == 40
    chats.add_turn(chat.id, "user", answer.question)
    turn_id = chats.add_turn(chat.id, "assistant", answer.text, answer=answer)
    back = ChatStore.of(get_settings()).turns(chat.id)[-1]  # a fresh store object: as after a restart
    assert back.id == turn_id and back.answer is not None
    got = back.answer
    assert got.text == answer.text and got.citations == answer.citations
    assert got.search.embedding == answer.search.embedding
    assert got.search.query_vector == answer.search.query_vector
    assert [(h.source, h.score, h.vector, h.bm25_score) for h in got.search.hits] == \
           [(h.source, h.score, h.vector, h.bm25_score) for h in answer.search.hits]
    assert answer_to_dict(answer_from_dict(answer_to_dict(answer))) == json.loads(
        json.dumps(answer_to_dict(answer), default=float))


def test_several_chats_per_user_rename_delete(settings) -> None:
    chats = ChatStore.of(settings)
    a = chats.create("alice", "first")
    b = chats.create("alice", "second")
    c = chats.create("bob", "bob's")
    chats.add_turn(a.id, "user", "question")  # touching a chat moves it to the top
    assert [x.id for x in chats.list("alice")] == [a.id, b.id]
    assert [x.id for x in chats.list("bob")] == [c.id]
    chats.rename(b.id, "  renamed\n chat ")
    assert chats.get(b.id).title == "renamed chat"
    chats.delete(a.id)
    assert [x.id for x in chats.list()] == [c.id, b.id]
    with pytest.raises(ChatNotFoundError, match="rag chats list"):
        chats.get(a.id)


def test_exports_and_cli(answerer: Answerer, capsys, tmp_path: Path) -> None:
    chats = ChatStore.of(get_settings())
    chat = chats.create(title="埋め込み")
    for question in ("埋め込みとは何ですか？", "What does Chroma return?"):
        answer = answerer.answer(question, mode="hybrid")
        chats.add_turn(chat.id, "user", question)
        turn = chats.add_turn(chat.id, "assistant", answer.text, answer=answer)
    chats.rate(turn, 1)
    chats.judge_source(turn, 1, answer.search.hits[0].source, "right")
    chats.judge_source(turn, 2, answer.search.hits[1].source, "wrong")

    data = export_dict(chats, chat.id)
    first, second = data["exchanges"]
    assert first["question"] == "埋め込みとは何ですか？" and "[1]" in first["answer"]
    assert first["embedding"]["model"] == "use-multilingual-v3" and first["llm"] is None
    assert first["citations"] and all(-1 <= s["score"] <= 1 for s in first["sources"])
    assert [s["score"] for s in second["sources"]] == [round(h.score, 6) for h in answer.search.hits]
    assert second["rating"] == "up" and first["rating"] is None
    assert [s["verdict"] for s in second["sources"][:3]] == ["right", "wrong", None]

    md = export_markdown(chats, chat.id)
    assert md.startswith("# 埋め込み") and "## 1. 埋め込みとは何ですか？" in md
    assert f"| [1] | `{answer.search.hits[0].source}` |" in md and "| right |" in md and "👍" in md

    assert main(["chats", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["id"], c["title"], c["turns"]) for c in listed] == [(chat.id, "埋め込み", 4)]
    assert main(["chats", "export", chat.id, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == data
    out = tmp_path / "chat.md"
    assert main(["chats", "export", chat.id, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == md
    assert main(["chats", "export", "nope"]) == 1
    assert "rag chats list" in capsys.readouterr().err


def start_app(monkeypatch: pytest.MonkeyPatch, corpus: Path, chat: str | None = None) -> AppTest:
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus))
    get_settings.cache_clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    if chat:
        at.query_params["chat"] = chat
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return finish_first_start(at, TIMEOUT)


def test_app_saves_restores_and_takes_feedback_that_eval_measures(
    corpus: Path, local_model, monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:
    at = start_app(monkeypatch, corpus)
    at.chat_input[0].set_value("猫の名前は何ですか？").run()
    at.chat_input[0].set_value("What does Chroma return?").run()
    assert not at.exception
    chats = ChatStore.of(get_settings())
    (chat,) = chats.list()
    assert chat.title == "猫の名前は何ですか？" and chat.turns == 4
    assert at.query_params["chat"] == chat.id  # the URL names the open chat

    first = chats.turns(chat.id)[1]
    at.feedback(key=f"rating_{first.id}").set_value(0).run()  # 👎 is option 0 of "thumbs"
    top = first.answer.search.hits[0]
    at.button_group(key=f"verdict_{first.id}_1").set_value("right").run()
    at.button_group(key=f"verdict_{first.id}_2").set_value("wrong").run()
    assert not at.exception
    back = chats.turns(chat.id)[1]
    assert back.rating == -1 and back.sources == {1: "right", 2: "wrong"}

    fresh = start_app(monkeypatch, corpus)  # a new visit: a new chat, the saved one listed
    assert list(fresh.chat_message) == []
    fresh.sidebar.button(key=f"open_{chat.id}").click().run()
    assert len(fresh.chat_message) == 4

    again = start_app(monkeypatch, corpus, chat=chat.id)  # the same URL after a restart
    assert [m.name for m in again.chat_message] == ["user", "assistant", "user", "assistant"]
    reply = [m for m in again.chat_message if m.name == "assistant"][0]
    assert "猫" in answer_text(reply) and "[1]" in answer_text(reply)  # with its clickable citations
    assert any(top.source in m.value and "★" in m.value for m in reply.markdown)  # sources back
    assert reply.get("progress")  # with their score bars
    assert any("512 dims" in c.value and "norm 1.0000" in c.value for c in reply.caption)  # vectors
    assert [e.label for e in reply.expander][-1] == DEBUG_LABEL and not again.exception
    assert len(reply.expander[-1].tabs) == 7  # the debug panel drawn from the stored answer
    assert again.button_group(key=f"verdict_{first.id}_1").value == "right"
    assert again.feedback(key=f"rating_{first.id}").value == 0

    again.sidebar.text_input(key=f"title_{chat.id}").input("猫と Chroma").run()  # rename
    assert chats.get(chat.id).title == "猫と Chroma"
    assert again.sidebar.button(key=f"open_{chat.id}").label == "▶ 猫と Chroma"
    again.sidebar.button(key="clear_chat").click().run()  # a new chat, the old one stays listed
    assert list(again.chat_message) == [] and "chat" not in again.query_params
    again.chat_input[0].set_value("トークンIDとは？").run()
    assert len(chats.list()) == 2
    again.sidebar.button(key=f"open_{chat.id}").click().run()
    assert len(again.chat_message) == 4

    (other,) = [c for c in chats.list() if c.id != chat.id]
    again.sidebar.button(key=f"open_{other.id}").click().run()
    assert len(again.chat_message) == 2
    again.sidebar.button(key="delete_chat").click().run()  # deletes the open chat, opens the next
    assert [c.id for c in chats.list()] == [chat.id]
    assert len(again.chat_message) == 4

    code = main(["eval", "--from-feedback", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["questions"] == 1
    assert report["recall@1"] == 1.0  # the source marked right was the top hit
    qa = (get_settings().data_dir / "feedback-qa.jsonl").read_text(encoding="utf-8")
    assert json.loads(qa) == {"question": "猫の名前は何ですか？", "source": top.source}


def test_eval_from_feedback_without_marks_says_what_to_do(settings, capsys) -> None:
    assert main(["eval", "--from-feedback"]) == 1
    assert "Mark sources ✓ right" in capsys.readouterr().err
    assert main(["eval"]) == 1


def test_llm_answer_keeps_model_logprobs_and_the_rewritten_question(corpus: Path, openai_env) -> None:
    reply = "Chroma returns the cosine distance [1]."
    openai_env.chat_reply = lambda messages: (
        "What distance does Chroma return?" if messages[0]["content"].startswith("Rewrite") else reply)
    Ingestor(get_settings()).ingest([corpus])
    history = [{"role": "user", "content": "Tell me about Chroma."},
               {"role": "assistant", "content": "Chroma is a vector store [1]."}]
    answer = Answerer(get_settings()).answer("And what does it return?", history=history, k=3)
    assert answer.logprobs and answer.standalone_question == "What distance does Chroma return?"
    chats = ChatStore.of(get_settings())
    chat = chats.create(title="Chroma")
    turn = chats.add_turn(chat.id, "assistant", answer.text, answer=answer)
    back = chats.turns(chat.id)[0].answer
    assert back is not None and back.logprobs == answer.logprobs  # the Next-token tab's data
    assert (back.llm, back.search.embedding.dims) == ("gpt-4o-mini", 1536)
    chats.judge_source(turn, 1, answer.search.hits[0].source, "right")
    (item,) = export_dict(chats, chat.id)["exchanges"]
    assert item["llm"] == "gpt-4o-mini" and item["standalone_question"] == answer.standalone_question
    assert chats.marked_right()[0][0] == "What distance does Chroma return?"  # eval asks it alone


def test_a_chat_stored_by_an_older_version_still_opens(answerer: Answerer) -> None:
    """Fields added to Answer/Hit later take their defaults; fields since removed are dropped."""
    answer = answerer.answer("猫の名前は何ですか？", mode="hybrid")
    data = answer_to_dict(answer)
    assert data["search"]["hits"][0]["fusion"] is not None  # hybrid: the fusion operands are kept
    for hit in data["search"]["hits"]:
        del hit["fusion"]  # as stored before fusion operands existed
        hit["retired_field"] = 1
    back = answer_from_dict(data)
    assert back.search.hits[0].fusion is None and back.search.hits[0].score == answer.search.hits[0].score
    full = answer_from_dict(answer_to_dict(answer))
    assert full.search.hits[0].fusion == answer.search.hits[0].fusion
