"""Documents, saved chats, exports and feedback as a person meets them, in headless Chromium.

The Documents test uploads its own file to the shared app and deletes it again. The conversation
test runs its own `streamlit run`, stops it and starts it again on the same data dir: the chat, its
sources and the feedback given must all be back, the export must download, and the source marked
right must become a question `rag eval --from-feedback` measures.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import get_settings
from tests.conftest import REPO, free_port, start_process, stop_process
from tests.test_browser import (  # noqa: F401
    CHROMEDRIVER,
    CHROMIUM,
    FLAGS,
    Page,
    app_url,
    browser,
    open_sources,
    wait_for_first_start,
)
from tests.test_formats import docx_bytes

pytestmark = pytest.mark.browser


def open_page(driver, url: str, ready_css: str) -> Page:
    """A `Page` on any page of the app (Page() itself waits for the chat box)."""
    from selenium.webdriver.common.by import By

    page = Page.__new__(Page)
    page.d, page.By = driver, By
    driver.get(url)
    page.wait_css(ready_css, timeout=90)
    page.idle()
    return page


def button(page: Page, words: str, scope: str = ""):
    return page.wait_for(lambda: next(b for b in page.all(f"{scope} button") if words in b.text),
                         f"a button saying {words!r}")


def press(page: Page, words: str, scope: str = "") -> None:
    """Click the button saying `words`, finding it again if a rerun replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        try:
            page.click(button(page, words, scope))
            return
        except StaleElementReferenceException:
            page.idle()
    raise AssertionError(f"the button saying {words!r} kept going stale")


def open_document(page: Page, name: str) -> None:
    """Pick `name` in the Open box; again if a rerun swapped the box while it was being typed in."""
    from selenium.common.exceptions import (
        ElementNotInteractableException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.keys import Keys

    for _ in range(4):
        try:
            select = page.wait_css('[data-testid="stSelectbox"] input')[0]
            page.click(select)
            select.send_keys(name, Keys.ENTER)
            page.idle()
            page.wait_for(lambda: any(f"📄 {name}" in h.text for h in page.all("h3")), f"{name} open", 10)
            return
        except (AssertionError, StaleElementReferenceException, ElementNotInteractableException):
            page.idle()
            page.d.find_element(page.By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    raise AssertionError(f"could not open {name}")


def test_documents_page_upload_list_open_delete(app_url: str, browser, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    page = open_page(browser, app_url + "/documents", '[data-testid="stDataFrame"]')
    total = int(page.wait_for(lambda: re.search(r"(\d+) / \1 ", page.text()),
                              "the document count").group(1))
    note = tmp_path / "猫のメモ.docx"
    note.write_bytes(docx_bytes())
    garbled = tmp_path / "化け.txt"
    garbled.write_text("⽇本の⽂書を⾒る。検索では⾒つからない。", encoding="utf-8")  # Kangxi radicals
    drop = page.wait_css('[data-testid="stMain"] [data-testid="stFileUploaderDropzoneInput"]')[0]
    drop.send_keys(f"{note}\n{garbled}")
    press(page, "Ingest", '[data-testid="stMain"]')
    done = page.wait_css('[data-testid="stAlertContentSuccess"]', timeout=90)
    assert "2 ファイル / files · +3 chunks" in done[0].text, done[0].text
    warned = page.wait_css('[data-testid="stAlertContentWarning"]')[0].text
    assert "化け.txt" in warned and "CJK radical" in warned, warned
    page.wait_for(lambda: f"{total + 2} / {total + 2} " in page.text(), "the new documents in the list")

    open_document(page, "化け.txt")
    flag = page.wait_for(lambda: [w.text for w in page.all('[data-testid="stAlertContentWarning"]')
                                  if "Garbled text?" in w.text], "the document's flag")
    assert "CJK radical" in flag[0] and "⽇ for 日" in flag[0], flag

    box = page.wait_css('input[aria-label^="名前で絞り込み"]')[0]
    box.send_keys("メモ", Keys.ENTER)
    page.idle()
    page.wait_for(lambda: f"1 / {total + 2} " in page.text(), "the filtered list")
    grid = page.wait_for(lambda: (text := page.all('[data-testid="stDataFrame"]')[0].get_attribute(
        "textContent")) and "猫のメモ.docx" in text and text, "the filtered table")
    assert "猫のメモ.docxdocx" in grid
    assert "model multilingual-e5-small (384)" in page.text()  # the default model, once above the list
    assert "化け.txt" not in grid

    page.wait_for(lambda: not page.all(".rag-doc-text"), "the other document closed by the filter")
    open_document(page, "猫のメモ.docx")
    text = page.wait_css(".rag-doc-text")[0].text
    assert re.search(r"⟦chunk 0 · \d+ tok⟧埋め込みの基礎\n埋め込みベクトルは文の意味", text), text
    assert re.search(r"⟦chunk 1 · \d+ tok⟧類似度", text) and "モデル: USE | 次元: 512" in text
    assert "docx · " in page.text() and "2 chunks" in page.text()
    page.shot("documents.png", top=page.all("h1")[0])

    press(page, "Delete", '[data-testid="stMain"]')
    press(page, "Delete it")
    gone = page.wait_css('[data-testid="stAlertContentSuccess"]', timeout=60)
    assert "猫のメモ.docx" in gone[0].text and "2 chunks" in gone[0].text
    page.wait_for(lambda: f"0 / {total + 1} " in page.text(), "the list without it")
    page.wait_for(lambda: not page.all(".rag-doc-text"), "the closed document", 30)


@pytest.fixture
def own_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    """(data dir, (start, stop)): start() runs `streamlit run` on that data dir and port, returns the URL."""
    data = tmp_path_factory.mktemp("restart-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(RAG_DATA_DIR=str(data / "rag"), PYTHONUNBUFFERED="1")
    procs = []
    port = free_port()

    def start() -> str:
        url = f"http://127.0.0.1:{port}"
        procs.append(start_process(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            url + "/_stcore/health", data / f"streamlit-{len(procs)}.log", timeout=90, cwd=data, env=env))
        return url

    def stop() -> None:
        stop_process(procs[-1])

    yield data / "rag", (start, stop)
    for proc in procs:
        if proc.poll() is None:
            stop_process(proc)


def download_driver(folder: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.add_experimental_option("prefs", {"download.default_directory": str(folder),
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_conversation_survives_a_restart_with_feedback_and_export(
    own_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, (start, stop) = own_app
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = download_driver(downloads)
    try:
        url = start()
        wait_for_first_start(url)  # the corpus is indexed in the background on a first start
        page = Page(driver, url)
        answer = page.ask("コサイン類似度とは何ですか？")
        open_sources(page, answer)  # the Sources section starts collapsed
        first_source = page.wait_for(
            lambda: re.search(r"\[1\] (\S+\.\w+)", answer.text), "the first source").group(1)
        page.click(answer.find_element(page.By.CSS_SELECTOR, 'button[aria-label="Thumbs up"]'))
        press(page, "出典は正しかった")
        page.click(page.wait_for(lambda: [b for b in page.all('[data-testid="stPopoverBody"] button')
                                          if "正しい" in b.text][0], "the right button of source 1"))
        page.idle()
        chat_url = driver.current_url
        assert "?chat=" in chat_url, chat_url
        stop()

        start()  # the server again, same port and data dir
        page = Page(driver, chat_url)  # the tab reloaded: a new browser session
        messages = page.wait_css('[data-testid="stChatMessage"]', 2)
        assert "コサイン類似度とは何ですか？" in messages[0].text
        open_sources(page, messages[1])  # restored as it was: collapsed
        restored = page.all('[data-testid="stChatMessage"]')[1].text
        assert re.search(r"\[\d\]", restored) and first_source in restored
        assert "類似度" in restored  # the sources with their scores
        page.shot("chats.png")
        pressed = page.wait_for(lambda: [b.get_attribute("aria-label") for b in page.all(
            '[data-testid="stChatMessage"] button[role="radio"][aria-checked="true"]')], "the 👍 given")
        assert pressed == ["Thumbs up"]
        assert "コサイン類似度とは何ですか？" in button(page, "コサイン類似度", '[data-testid="stSidebar"]').text

        page.click(page.wait_for(lambda: next(e for e in page.all('[data-testid="stSidebar"] summary')
                                              if "This chat" in e.text), "the chat's menu"))
        press(page, "Markdown", '[data-testid="stSidebar"]')
        exported = page.wait_for(lambda: [p for p in downloads.glob("chat-*.md")], "the download", 30)
        md = exported[0].read_text(encoding="utf-8")
        assert md.startswith("# コサイン類似度とは何ですか？") and "👍" in md
        assert f"| [1] | `{first_source}` |" in md and "| right |" in md
    finally:
        driver.quit()

    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.delenv("RAG_LOCAL_MODEL")  # the app ran on the defaults: measure its collection
    get_settings.cache_clear()
    assert main(["eval", "--from-feedback", "--json"]) == 0
    qa = [json.loads(line) for line in (data_dir / "feedback-qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert qa == [{"question": "コサイン類似度とは何ですか？", "source": first_source}]
