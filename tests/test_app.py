"""The Streamlit app through `AppTest`: first start, asking, sources, notices and error paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.config import get_settings
from rag.ingest.pipeline import Ingestor
from rag.ingest.uploads import ingest_uploads, sanitize_name, save_uploads
from rag.ui.chat import DEBUG_LABEL
from tests.conftest import REPO, finish_first_start
from tests.fake_openai import FakeOpenAI

TIMEOUT = 120  # the first run loads the embedding model (about 4 s) and ingests


def start(monkeypatch: pytest.MonkeyPatch, corpus_dir: Path) -> AppTest:
    """The app's first run, then (if it started one) the end of the background first-start ingest
    and the run that shows its report."""
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    get_settings.cache_clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return finish_first_start(at, TIMEOUT)


def all_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "info", "warning", "success", "text")
             for e in at.get(kind)]
    parts += [e.value for e in at.sidebar.get("markdown")]
    return "\n".join(str(p) for p in parts)


def assistant(at: AppTest):
    return [m for m in at.chat_message if m.name == "assistant"][-1]


def answer_text(message) -> str:
    """The answer as drawn: the cited-answer element's escaped HTML, as the text a person reads."""
    import html
    import json
    import re

    (element,) = [e for e in message.get("bidi_component")
                  if e.proto.component_name == "rag_cited_answer"]
    return html.unescape(re.sub(r"<[^>]+>", "", json.loads(element.proto.json)))


def test_first_start_ingests_then_answers_with_sources(
    corpus: Path, local_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, corpus)
    assert "5 ファイル / files" in at.success[0].value  # the first-start ingest report
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert "use-multilingual-v3" in sidebar and "chunks" in sidebar and " 0 chunks" not in sidebar
    assert "No LLM configured" in at.sidebar.info[0].value  # the no-key notice
    assert "OPENAI_API_KEY" in at.sidebar.info[0].value

    at.chat_input[0].set_value("猫の名前は何ですか？").run()
    assert not at.exception and not at.error
    reply = assistant(at)
    answer_md = answer_text(reply)
    assert "[1]" in answer_md and "猫" in answer_md
    assert any("抽出モード" in c.value for c in reply.caption)
    shown = [m.value for m in reply.markdown]
    assert any("ja/neko_sjis.txt" in v and "★ [1]" in v for v in shown)
    bars = reply.get("progress")
    assert bars and all(0 <= b.value <= 100 for b in bars)
    assert any("512 dims" in c.value and "norm 1.0000" in c.value for c in reply.caption)
    assert any("吾輩は猫である" in t.value for t in reply.text)

    assert [e.label for e in reply.expander][-1] == DEBUG_LABEL

    at.sidebar.radio(key="retrieval_mode").set_value("hybrid").run()
    at.chat_input[0].set_value("What does Chroma return?").run()  # history survives reruns
    assert not at.exception and not at.error
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert "cosine.md" in "\n".join(m.value for m in assistant(at).markdown)
    assert assistant(at).get("progress")
    assert at.session_state["messages"][-1]["answer"].search.mode == "hybrid"

    at.sidebar.button(key="clear_chat").click().run()
    assert list(at.chat_message) == []


@pytest.mark.parametrize("corpus_name", ["no-such-corpus", "empty-corpus"])
def test_empty_store_explains_how_to_ingest(
    tmp_path: Path, local_model, monkeypatch: pytest.MonkeyPatch, corpus_name: str
) -> None:
    (tmp_path / "empty-corpus").mkdir()
    at = start(monkeypatch, tmp_path / corpus_name)
    assert "rag ingest PATH" in at.info[0].value
    assert not at.success  # nothing was ingested: no green "0 files" report
    at.chat_input[0].set_value("What is an embedding?").run()
    assert not at.exception
    assert "rag ingest" in at.error[0].value
    assert "Traceback" not in all_text(at)
    at.chat_input[0].set_value("埋め込みとは何ですか？").run()  # a Japanese question: a Japanese reply
    assert "まだ文書がありません" in at.error[-1].value and "rag ingest" in at.error[-1].value


def test_401_shows_a_message_not_a_traceback(
    corpus: Path, openai_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    Ingestor(get_settings()).ingest([corpus])
    at = start(monkeypatch, corpus)
    assert "gpt-4o-mini" in "\n".join(m.value for m in at.sidebar.markdown)
    assert not at.sidebar.info  # no extractive notice when an LLM is configured
    openai_env.fail_next(401, endpoint="chat")
    at.chat_input[0].set_value("cosine distance?").run()
    assert not at.exception
    (error,) = at.error
    assert "OPENAI_API_KEY" in error.value and "401" in error.value
    text = all_text(at)
    assert "Traceback" not in text and openai_env.api_key not in text

    at.chat_input[0].set_value("What does Chroma return?").run()  # the next question works
    assert "[1]" in answer_text(assistant(at))
    assert any("gpt-4o-mini" in c.value for c in assistant(at).caption)


def test_uploads_are_sanitised_checked_and_ingested(settings, local_model) -> None:
    assert sanitize_name("../../etc/passwd.md") == "passwd.md"
    assert sanitize_name("..\\..\\evil.TXT") == "evil.txt"
    assert sanitize_name(".env") == "env"
    assert sanitize_name("日本語 メモ.md") == "日本語_メモ.md"
    saved, rejected = save_uploads(settings, [("x.exe", b"MZ"), ("big.txt", b"a" * (settings.max_file_bytes + 1))])
    assert saved == [] and [r.name for r in rejected] == ["x.exe", "big.txt"]
    assert "RAG_MAX_FILE_MB" in rejected[1].reason
    report, rejected = ingest_uploads(
        settings, [("../notes/猫.txt", "吾輩は猫である。名前はまだ無い。".encode()), ("a.rtf", b"{\\rtf1 a}")]
    )
    assert report is not None and report.files_read == 1 and report.added == 1
    assert [r.name for r in rejected] == ["a.rtf"]
    uploaded = settings.data_dir / "uploads" / "猫.txt"
    assert uploaded.is_file()
    assert sorted(p.name for p in (settings.data_dir / "uploads").iterdir()) == ["猫.txt"]


def test_not_in_the_documents_says_why_and_still_shows_the_nearest_chunks(
    corpus: Path, local_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, corpus)
    at.chat_input[0].set_value("富士山の高さは何メートルですか？").run()
    assert not at.exception and not at.error
    reply = assistant(at)
    notice = "\n".join(i.value for i in reply.info)
    assert notice.startswith("資料には該当する情報が見つかりませんでした。") and "類似度" in notice
    assert at.session_state["messages"][-1]["answer"].not_found
    shown = "\n".join(m.value for m in reply.markdown)
    assert "ja/" in shown or "cosine.md" in shown  # the nearest chunks, listed below
    assert "★" not in shown  # none of them is cited
