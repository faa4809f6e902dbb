"""Document text is data, never markup: a document's links and images never go live in the app.

A document carries a link whose text hides its URL and an image that is a tracking beacon. The
extractive answer quotes them and the sources show them: as text, with the real URL readable,
and nothing fetched. Checked three ways: the helper through a CommonMark renderer, the app's
elements through `AppTest`, and a real Chromium on the real app with a beacon server counting
the requests it gets (it must get none).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from rag.config import get_settings
from rag.ui.safe_text import code_span, literal_line, literal_markdown
from tests.conftest import REPO, finish_first_start, free_port, start_process, stop_process

QUESTION = "パスワードを忘れたときはどうすればいいですか？"


def hostile_doc(host: str) -> str:
    return (
        "# パスワードの再設定\n\n"
        f"パスワードを忘れたときは [公式の再設定ページ]({host}/phish-ja) から再設定してください。\n\n"
        f"![]({host}/beacon.png?from=rag-lens) パスワードの再設定リンクは24時間有効です。\n\n"
        f'パスワードを忘れたら <img src="{host}/html-img.png"> :red[至急] $x^2$ へ <{host}/auto> '
        f"{host}/bare を開いてください。\n\n[1]: {host}/ref-def\n"
    )


HOSTILE = [
    hostile_doc("https://evil.example"),
    "[click](javascript:alert(1)) ![x][img]\n\n[img]: https://evil.example/i.png",
    "<script>alert(1)</script><a href='https://evil.example'>x</a>",
    "www.evil.example and me@evil.example and ```code``` and | a | b |\n|---|---|",
    "  indented\n\ttabbed\n> quote\n- item\n1. one\n---\n=== \\[escaped\\]",
]


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_markdown_renders_as_the_text_itself(text: str) -> None:
    html = _html(literal_markdown(text))
    assert "<a " not in html and "<img" not in html and "<script" not in html
    assert not re.search(r"<[^>]*\b(href|src)=", html)  # as text (&lt;img src=…) it is fine
    if "evil.example/phish-ja" in text:
        assert "https://evil.example/phish-ja" in html  # the real URL, readable


def test_citations_stay_and_code_spans_hold_any_name() -> None:
    assert literal_markdown("答えは寿司です [1][2]。") == "答えは寿司です [1][2]。"
    for name in ("ja/neko_sjis.txt", "a`b``c.md", "[x](https://evil.example).md"):
        html = _html(code_span(name))
        assert html.count("<code>") == 1 and "<a " not in html


def _shown_markdown(at: AppTest) -> list[str]:
    return [str(e.value) for kind in ("markdown", "caption") for e in at.get(kind)]


def test_app_shows_a_hostile_document_as_text(tmp_path: Path, local_model, monkeypatch) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "reset.md").write_text(hostile_doc("https://evil.example"), encoding="utf-8")
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus))
    get_settings.cache_clear()
    at = finish_first_start(AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run())
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception
    assistant = [m for m in at.chat_message if m.name == "assistant"][-1]
    answer = at.session_state["messages"][-1]["answer"]
    assert "evil" in answer.text and "[1]" in answer.text  # the link's sentence, quoted and cited
    assert any("phish-ja" in t.value for t in assistant.text)  # the source's text, as st.text
    for shown in _shown_markdown(at):
        html = _html(shown)
        assert "<a " not in html and "<img" not in html, shown
    # the answer itself is an HTML component: escaped text, its only links the [n] citations
    from rag.ui.citations import answer_html

    shown = answer_html(answer.text, {h.rank for h in answer.search.hits})
    assert not re.search(r"<img|<a (?![^>]*class=\"rag-cite\")", shown)
    assert re.findall(r'href="([^"]*)"', shown) == ["#"] * shown.count("rag-cite")


HOSTILE_NAMES = [
    "[x](https:/evil.example)x.md",  # a folder `[x](https:` holding `evil.example)x.md`
    "www.evil.example.md",  # GFM links a bare www. name
    "me@evil.example.md",  # and an address
    "<img src=https:evil.example onerror=alert(1)>.md",
]
_AUTOLINK = re.compile(r"https?://|www\.|[\w.+-]+@[\w-]+\.\w")
"""What GFM (Streamlit's Markdown) links in plain text even when every character is escaped."""


def _live_markup(markdown: str) -> list[str]:
    """What in `markdown` would not show as text: links, images, attributes, and any URL, www.
    name or address outside a code span (the CommonMark renderer here does not autolink them as
    Streamlit's GFM does, so they are looked for in the text it leaves)."""
    html = _html(markdown)
    found = re.findall(r"<a |<img|<[^>]*\b(?:href|src)=", html)
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.S)
    return found + _AUTOLINK.findall(re.sub(r"<[^>]+>", "", outside_code))


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "http://evil.example/x.md",
                                  "[x](http://evil.example/x) notes.md"])
def test_a_hostile_name_renders_as_text(name: str) -> None:
    assert _live_markup(literal_line(name)) == []
    assert "evil.example" in _html(literal_line(name))


def test_the_citation_view_shows_a_hostile_file_name_as_text(tmp_path: Path, local_model,
                                                              monkeypatch) -> None:
    """Names are chosen by whoever hands over the file: the source viewer's header and captions show
    them letter for letter, never as a link, an autolinked address or an image."""
    corpus = tmp_path / "corpus"
    (corpus / "[x](https:").mkdir(parents=True)
    body = "パスワードを忘れたときは、再設定ページからパスワードを再設定してください。\n"
    for name in HOSTILE_NAMES:
        (corpus / name).write_text(body, encoding="utf-8")
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus))
    get_settings.cache_clear()
    at = finish_first_start(AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run())
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception
    answer = at.session_state["messages"][-1]["answer"]
    assert {h.source for h in answer.search.hits} == set(HOSTILE_NAMES)
    shown_names: set[str] = set()
    for hit in answer.search.hits:
        button = next(b for b in at.button if b.key and b.key.endswith(f"_open_{hit.rank}"))
        button.click().run()
        assert not at.exception, [e.value for e in at.exception]
        header = next(m.value for m in at.markdown if str(m.value).startswith(f"**\\[{hit.rank}\\]"))
        assert _live_markup(str(header)) == [], header
        text = re.sub(r"<[^>]+>", "", _html(str(header))).replace("&lt;", "<").replace("&gt;", ">")
        if hit.source in text:
            shown_names.add(hit.source)
        for shown in _shown_markdown(at):
            assert _live_markup(shown) == [], shown
    assert shown_names == set(HOSTILE_NAMES)  # each name shown, letter for letter


def _documents_page() -> None:
    from rag.config import get_settings
    from rag.ui.documents import render_documents

    render_documents(get_settings())


def test_the_documents_page_shows_a_hostile_file_name_as_text(tmp_path: Path, capsys) -> None:
    """The Documents page names the open file in a heading, a caption, the delete prompt and the
    message after deleting: all Markdown, all letter for letter."""
    from rag.cli import main

    corpus = tmp_path / "corpus"
    (corpus / "[x](https:").mkdir(parents=True)
    for name in HOSTILE_NAMES:
        (corpus / name).write_text("パスワードの再設定について。\n", encoding="utf-8")
    assert main(["ingest", str(corpus), "--json"]) == 0
    capsys.readouterr()
    at = AppTest.from_function(_documents_page, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    for name in HOSTILE_NAMES:
        at.selectbox(key="doc_open").select(name).run()
        assert not at.exception, [e.value for e in at.exception]
        shown = [str(e.value) for kind in ("markdown", "caption", "subheader") for e in at.get(kind)]
        assert any(name in _text_of(s) for s in shown if s.startswith("📄")), shown
        for markdown in shown:
            assert _live_markup(markdown) == [], markdown
    at.button(key="doc_delete_confirm").click().run()
    deleted = [str(e.value) for e in at.success]
    assert deleted and any(HOSTILE_NAMES[-1] in _text_of(m) for m in deleted), deleted
    for markdown in deleted:
        assert _live_markup(markdown) == [], markdown


def _text_of(markdown: str) -> str:
    """What a reader sees: the rendered HTML's text, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", _html(markdown)))


class _Beacon(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Beacon.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Beacon)
    _Beacon.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.browser
def test_the_browser_fetches_nothing_and_shows_the_real_url(tmp_path: Path, beacon: str) -> None:
    from tests.test_browser import CHROMEDRIVER, CHROMIUM, Page, make_driver

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("browser tests need Debian's chromium and chromium-driver (see .ci/run)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "reset.md").write_text(hostile_doc(beacon), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), RAG_CORPUS_DIR=str(corpus), PYTHONUNBUFFERED="1")
    url = f"http://127.0.0.1:{port}"
    proc = start_process(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
         "false", "--server.fileWatcherType", "none"],
        url + "/_stcore/health", tmp_path / "streamlit.log", timeout=90, cwd=tmp_path, env=env)
    driver = make_driver()
    try:
        page = Page(driver, url)
        box = page.wait_css('textarea[data-testid="stChatInputTextArea"]')[0]
        box.send_keys(QUESTION + "\n")
        page.wait_for(lambda: "phish-ja" in driver.find_element("tag name", "body").text,
                      "the quoted link", timeout=90)
        page.idle()  # the latest answer's sources are open, so their text is rendered too
        body = driver.find_element("tag name", "body").text
        assert f"{beacon}/phish-ja" in body  # the link's real URL, as text
        anchors = [a.get_attribute("href") or "" for a in page.all("a")]
        images = [i.get_attribute("src") or "" for i in page.all("img")]
        assert not [h for h in anchors if h.startswith(beacon)], [
            a.find_element("xpath", "./..").get_attribute("outerHTML")[:800] for a in page.all("a")
            if (a.get_attribute("href") or "").startswith(beacon)]
        assert not [s for s in images if s.startswith(beacon)], images
        assert _Beacon.hits == []  # nothing was fetched: no beacon, no prefetch
    finally:
        driver.quit()
        stop_process(proc)
