"""The app as a person meets it: `streamlit run app.py` driven by headless Chromium.

AppTest checks the script's logic; these tests check what only a browser shows: the websocket
round trip, streamed answers, the expander, tabs, uploads, sliders, and Plotly actually drawing.
On failure a screenshot and the page text are saved under `test-artifacts/`. With
`RAG_SCREENSHOTS_DIR` set (`make screenshots`), the README's screenshots are written there.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, start_process, stop_process

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = REPO / os.environ["RAG_SCREENSHOTS_DIR"] if os.environ.get("RAG_SCREENSHOTS_DIR") else None
FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
    "--disable-background-networking --disable-component-update --disable-sync --no-first-run "
    "--lang=ja"
).split()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app on a free port, with its own data dir, ingesting the bundled corpus."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("browser tests need Debian's chromium and chromium-driver (see .ci/run)")
    data = tmp_path_factory.mktemp("browser-data")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(RAG_DATA_DIR=str(data / "rag"), PYTHONUNBUFFERED="1")
    url = f"http://127.0.0.1:{port}"
    try:
        proc = start_process(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            url + "/_stcore/health", data / "streamlit.log", timeout=90, cwd=data, env=env,
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield url
    stop_process(proc)


def make_driver(width: int = 1280, height: int = 800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(request: pytest.FixtureRequest):
    driver = make_driver()
    yield driver
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        (ARTIFACTS / f"{name}.txt").write_text(driver.find_element("tag name", "body").text,
                                               encoding="utf-8")
    driver.quit()


class Page:
    """Small waits and actions over Streamlit's DOM (its `data-testid` attributes)."""

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.d, self.By = driver, By
        driver.get(url)
        self.wait_css('textarea[data-testid="stChatInputTextArea"]', timeout=90)
        self.idle()

    def all(self, css: str):
        return self.d.find_elements(self.By.CSS_SELECTOR, css)

    def wait_for(self, check: Callable[[], object], what: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = check()
            except Exception:  # elements go stale while Streamlit re-renders
                found = None
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_css(self, css: str, count: int = 1, timeout: float = 60):
        return self.wait_for(lambda: (els := self.all(css)) and len(els) >= count and els,
                             f"{count} x {css}", timeout)

    def idle(self, timeout: float = 90) -> None:
        """Wait until the script run finished (Streamlit shows a status widget while running)."""
        time.sleep(0.5)
        self.wait_for(lambda: not self.all('[data-testid="stStatusWidget"]'), "the app to be idle",
                      timeout)

    def ask(self, question: str) -> object:
        from selenium.webdriver.common.keys import Keys

        before = len(self.all('[data-testid="stChatMessage"]'))
        box = self.wait_css('textarea[data-testid="stChatInputTextArea"]')[0]
        box.send_keys(question)
        box.send_keys(Keys.ENTER)
        self.wait_css('[data-testid="stChatMessage"]', before + 2)
        self.idle()
        return self.all('[data-testid="stChatMessage"]')[-1]

    def click(self, element) -> None:
        """Scroll the element to the middle first: the fixed chat input or toolbar would catch it.

        The chat keeps scrolling itself to the bottom while it renders, so a click can still land
        on the toolbar; then the element is clicked through the DOM, as a person's click would be.
        """
        from selenium.common.exceptions import ElementClickInterceptedException

        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        time.sleep(0.2)
        try:
            element.click()
        except ElementClickInterceptedException:
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();",
                                  element)
        self.idle()

    def text(self) -> str:
        return self.d.find_element(self.By.TAG_NAME, "body").text

    def shot(self, name: str, top=None) -> None:
        """Save a README screenshot (only under `make screenshots`), `top` scrolled to the top."""
        if SCREENSHOTS:
            if top is not None:
                self.d.execute_script("arguments[0].scrollIntoView({block: 'start'});", top)
                time.sleep(0.5)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(str(SCREENSHOTS / name))


def sources_of(message) -> list[float]:
    """The similarity scores shown in one answer's Sources section."""
    return [float(s) for s in re.findall(r"(?:similarity|類似度)[^\d-]*(-?\d\.\d{3})", message.text)]


def test_japanese_and_english_questions_answer_with_citations_and_scores(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    ja = page.ask("コサイン類似度とは何ですか？")
    assert re.search(r"\[\d\]", ja.text), ja.text
    assert "抽出モード" in ja.text
    scores = sources_of(ja)
    assert len(scores) == 5 and all(-1 <= s <= 1 for s in scores), ja.text
    assert [f"[{n}]" for n in range(1, 6)] == re.findall(r"\[\d\](?= ja/| en/)", ja.text), ja.text
    page.shot("chat.png", top=page.all('[data-testid="stChatMessage"]')[-2])
    en = page.ask("What does HNSW trade off when searching for nearest neighbours?")
    assert re.search(r"\[\d\]", en.text)
    assert "hnsw_approximate_search.html" in en.text
    assert len(sources_of(en)) == 5


def test_debug_panel_shows_tokens_vector_and_a_drawn_projection(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    answer = page.ask("埋め込みとは何ですか？")
    expander = next(e for e in answer.find_elements(page.By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                    if "Show me the embedding" in e.text)
    page.click(expander)
    panel = page.wait_css('[data-testid="stTabs"]')[0]
    from rag.tokens import tokenize

    ids = [str(t.id) for t in tokenize("埋め込みとは何ですか？")]
    assert page.wait_for(lambda: all(i in page.text() for i in ids), "the question's token IDs")
    page.shot("tokens.png", top=panel)
    tabs = {t.text.strip(): t for t in panel.find_elements(page.By.CSS_SELECTOR, '[data-testid="stTab"]')}
    assert len(tabs) == 7, list(tabs)

    def open_tab(word: str) -> None:
        tab = next(t for label, t in tabs.items() if word.lower() in label.lower())
        page.click(tab)

    open_tab("Vector")
    # the default offline model, e5: 384 dims
    page.wait_for(lambda: "384" in page.text() and "norm" in page.text().lower(), "the vector view")
    open_tab("Projection")
    page.wait_css(".js-plotly-plot .main-svg", timeout=60)
    page.wait_css(".js-plotly-plot .scatterlayer .trace, .js-plotly-plot .gl-container", timeout=60)
    page.shot("debug-panel.png", top=page.all(".js-plotly-plot")[0])


def test_upload_a_file_and_ask_about_it(app_url: str, browser, tmp_path: Path) -> None:
    page = Page(browser, app_url)
    note = tmp_path / "タマ の メモ.txt"
    note.write_text("うちの猫のタマは毎朝七時にマグロの缶詰を食べます。好物は鰹節です。", encoding="cp932")
    upload = page.wait_css('[data-testid="stFileUploaderDropzoneInput"]')[0]
    upload.send_keys(str(note))
    ingest = page.wait_for(lambda: next(b for b in page.all('[data-testid="stSidebar"] button')
                                        if "Ingest" in b.text), "the ingest button")
    page.click(ingest)
    done = page.wait_css('[data-testid="stSidebar"] [data-testid="stAlertContentSuccess"]', timeout=90)
    assert "+1 chunks" in done[0].text, done[0].text
    answer = page.ask("タマは毎朝何を食べますか？")
    assert "マグロ" in answer.text, answer.text


def test_changing_k_changes_the_number_of_sources(app_url: str, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page = Page(browser, app_url)
    k_input = 'input[type="range"][aria-label^="検索件数 k"]'
    slider = page.wait_css(k_input)[0]
    start = int(slider.get_attribute("value"))
    page.d.execute_script("arguments[0].focus();", slider)
    ActionChains(page.d).send_keys(*[Keys.ARROW_LEFT] * (start - 2)).perform()
    page.wait_for(lambda: page.all(k_input)[0].get_attribute("value") == "2", "k = 2")
    page.idle()
    answer = page.ask("トークンIDとは何ですか？")
    assert len(sources_of(answer)) == 2, answer.text


def test_narrow_screen_keeps_labels_readable(app_url: str) -> None:
    driver = make_driver(390, 844)
    try:
        page = Page(driver, app_url)
        box = page.all('textarea[data-testid="stChatInputTextArea"]')[0]
        assert box.get_attribute("aria-label") or box.get_attribute("placeholder")
        assert box.size["width"] > 250
        page.shot("mobile.png")
    finally:
        driver.quit()
