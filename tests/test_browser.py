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
from contextlib import contextmanager
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


@contextmanager
def running_app(data: Path, **settings: str) -> Iterator[str]:
    """`streamlit run app.py` on a free port with its own data dir (and any RAG_ settings)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("browser tests need Debian's chromium and chromium-driver (see .ci/run)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
    env.update(RAG_DATA_DIR=str(data / "rag"), PYTHONUNBUFFERED="1", **settings)
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
    try:
        yield url
    finally:
        stop_process(proc)


def wait_for_first_start(url: str) -> None:
    """Open the app once and wait until its background first-start ingest has finished."""
    driver = make_driver()
    try:
        page = Page(driver, url)
        page.wait_for(lambda: "First start" not in page.text() and "ファイル / files" in page.text(),
                      "the first-start ingest to finish", timeout=600)
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app with the bundled corpus ingested (its background first-start ingest done)."""
    with running_app(tmp_path_factory.mktemp("browser-data")) as url:
        wait_for_first_start(url)
        yield url


def make_driver(width: int = 1280, height: int = 800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={max(width, 500)},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if width < 500:  # headless Chromium's windows are at least 500 px wide: emulate the phone
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    return driver


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
    """The cosine similarities shown in one answer's Sources section (open it first)."""
    return [float(s) for s in re.findall(r"(?:cosine similarity|コサイン類似度) (-?\d\.\d{3})", message.text)]


def fused_of(message) -> list[float]:
    """The fused scores that ranked one answer's sources (hybrid mode)."""
    return [float(s) for s in re.findall(r"(?:fused score|融合スコア) (-?\d\.\d{3})", message.text)]


def open_sources(page: Page, message) -> None:
    """Sources start collapsed (the answer stays in view); open them as a reader would."""
    summary = next(e for e in message.find_elements(page.By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                   if "📚" in e.text)
    page.click(summary)
    # the expander draws its content after the click: wait for every source's score line
    page.wait_for(lambda: len(re.findall(r"(?:cosine similarity|コサイン類似度) -?\d\.\d{3}", message.text))
                  >= min(5, int(re.search(r"\((\d+)\)", summary.text).group(1))), "the sources' scores")


def answer_block(page: Page, message):
    """The answer's own text (the first block with a citation) in an assistant message."""
    return page.wait_for(lambda: next(
        (e for e in message.find_elements(page.By.CSS_SELECTOR,
                                          'div.rag-answer, [data-testid="stMarkdownContainer"]')
         if re.search(r"\[\d\]", e.text)), None), "the answer text")


def rect(page: Page, element) -> dict[str, float]:
    return page.d.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width,"
        " height: r.height, view: window.innerHeight, viewWidth: window.innerWidth};", element)


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"]
                or b["bottom"] <= a["top"])


def test_japanese_and_english_questions_answer_with_citations_and_scores(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    ja = page.ask("コサイン類似度とは何ですか？")
    assert re.search(r"\[\d\]", ja.text), ja.text
    assert "抽出モード" in ja.text
    page.shot("chat.png", top=page.all('[data-testid="stChatMessage"]')[-2])
    open_sources(page, ja)
    scores = sources_of(ja)
    assert len(scores) == 5 and all(-1 <= s <= 1 for s in scores), ja.text
    assert [f"[{n}]" for n in range(1, 6)] == re.findall(r"\[\d\](?= ja/| en/)", ja.text), ja.text
    # hybrid ranks by the fused score, so that is the number shown first, in rank order
    fused = fused_of(ja)
    assert len(fused) == 5 and fused == sorted(fused, reverse=True), ja.text
    assert "順位は融合スコア" in ja.text
    # chunk text reads as text: no Markdown heading marks or bold markers
    assert not re.search(r"^#+ ", ja.text, re.MULTILINE) and "**" not in ja.text, ja.text
    en = page.ask("What does HNSW trade off when searching for nearest neighbours?")
    assert re.search(r"\[\d\]", en.text)
    open_sources(page, en)
    assert "hnsw_approximate_search.html" in en.text
    assert len(sources_of(en)) == 5
    assert fused_of(en) == sorted(fused_of(en), reverse=True)
    # BM25 cannot match a Japanese chunk to an English question: it says so instead of 0.000
    assert "BM25 0.000" not in en.text
    if re.search(r"\] ja/", en.text):
        assert "BM25 — other language" in en.text, en.text


def test_debug_panel_shows_tokens_vector_and_a_drawn_projection(app_url: str, browser) -> None:
    browser.set_window_size(1400, 1000)
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
    # the whole tab row fits at 1,400 px: no label is cut off at the right edge
    row = rect(page, panel.find_element(page.By.CSS_SELECTOR, '[role="tablist"]'))
    assert all(rect(page, t)["right"] <= row["right"] + 1 for t in tabs.values()), (row, list(tabs))
    # byte-fragment chips read `<e5 9f>`: no ␣ inside them
    assert not re.search(r"<[0-9a-f]{2}␣", page.text()), page.text()

    def open_tab(word: str) -> None:
        tab = next(t for label, t in tabs.items() if word.lower() in label.lower())
        page.click(tab)

    open_tab("ベクトル")
    # the default offline model, e5: 384 dims
    page.wait_for(lambda: "384" in page.text() and "norm" in page.text().lower(), "the vector view")
    open_tab("類似度")
    hist = page.wait_for(lambda: [p for p in page.all(".js-plotly-plot") if p.find_elements(
        page.By.CSS_SELECTOR, ".annotation")], "the histogram with its hit labels")[0]
    page.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", hist)
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(page.d).move_to_element(hist).perform()  # Plotly shows its toolbar on hover
    toolbar = page.wait_for(lambda: [m for m in hist.find_elements(page.By.CSS_SELECTOR, ".modebar")
                                     if m.is_displayed()], "the Plotly toolbar")[0]
    labels = hist.find_elements(page.By.CSS_SELECTOR, ".annotation")
    assert len(labels) == 5
    assert not any(overlaps(rect(page, a), rect(page, toolbar)) for a in labels)
    open_tab("投影")
    page.wait_css(".js-plotly-plot .main-svg", timeout=60)
    page.wait_css(".js-plotly-plot .scatterlayer .trace, .js-plotly-plot .gl-container", timeout=60)
    page.shot("debug-panel.png", top=page.all(".js-plotly-plot")[0])


@pytest.mark.parametrize("size", [(1400, 1000), (390, 844)], ids=["desktop", "phone"])
def test_the_answer_is_in_view_when_it_arrives(app_url: str, size: tuple[int, int]) -> None:
    driver = make_driver(*size)
    try:
        page = Page(driver, app_url)
        for question in ("コサイン類似度とは何ですか？",
                         "What does HNSW trade off when searching for nearest neighbours?"):
            message = page.ask(question)
            time.sleep(1)  # let Streamlit's scrolling settle
            box = rect(page, answer_block(page, message))
            chat_input = rect(page, page.all('[data-testid="stChatInput"]')[0])
            assert 0 <= box["top"] < chat_input["top"], (question, box, chat_input)
    finally:
        driver.quit()


def test_phone_width_keeps_the_map_and_tables_readable(app_url: str) -> None:
    driver = make_driver(390, 844)
    try:
        page = Page(driver, app_url)
        answer = page.ask("HNSW とは何ですか？")
        page.click(next(e for e in answer.find_elements(page.By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                        if "Show me the embedding" in e.text))
        panel = page.wait_css('[data-testid="stTabs"]')[0]
        tabs = panel.find_elements(page.By.CSS_SELECTOR, '[data-testid="stTab"]')
        page.click(next(t for t in tabs if "類似度" in t.text))
        page.wait_css('[data-testid="stDataFrame"]')
        # nothing makes the page itself scroll sideways
        assert page.d.execute_script("return window.innerWidth") == 390
        assert page.d.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
        page.click(next(t for t in tabs if "投影" in t.text))
        plot = page.wait_css(".js-plotly-plot .legend", timeout=60)[0].find_element(
            page.By.XPATH, "ancestor::div[contains(@class, 'js-plotly-plot')]")

        def laid_out() -> tuple[dict, dict, dict] | None:
            area = rect(page, plot.find_element(page.By.CSS_SELECTOR, ".nsewdrag"))
            legend = rect(page, plot.find_element(page.By.CSS_SELECTOR, ".legend"))
            figure = rect(page, plot)
            # the 24-file legend sits below the map instead of taking most of its width
            ok = area["width"] >= 0.75 * figure["width"] and legend["top"] >= area["bottom"] - 1
            return (area, legend, figure) if ok else None

        page.wait_for(laid_out, "the map to keep its width with the legend below it", timeout=30)
        # the title (method and point count) is not drawn under the Plotly toolbar
        title = rect(page, plot.find_element(page.By.CSS_SELECTOR, ".gtitle"))
        toolbar = rect(page, plot.find_element(page.By.CSS_SELECTOR, ".modebar"))
        assert title["top"] >= toolbar["bottom"] - 1 or title["right"] <= toolbar["left"] + 1, (title, toolbar)
        page.shot("mobile-map.png", top=plot)
    finally:
        driver.quit()


def chunk_count(page: Page) -> int:
    sidebar = page.all('[data-testid="stSidebar"]')[0].text
    return int(re.search(r"(\d+) chunks", sidebar).group(1))


def test_upload_a_file_and_ask_about_it(app_url: str, browser, tmp_path: Path) -> None:
    browser.set_window_size(1400, 1000)
    page = Page(browser, app_url)
    note = tmp_path / "タマ の メモ.txt"
    note.write_text("うちの猫のタマは毎朝七時にマグロの缶詰を食べます。好物は鰹節です。", encoding="cp932")
    upload = page.wait_css('[data-testid="stFileUploaderDropzone"]')[0]
    box = rect(page, upload)
    assert box["bottom"] <= box["view"], box  # the uploader is on the sidebar's first screen
    before = chunk_count(page)
    page.wait_css('[data-testid="stFileUploaderDropzoneInput"]')[0].send_keys(str(note))
    ingest = page.wait_for(lambda: next(b for b in page.all('[data-testid="stSidebar"] button')
                                        if "Ingest" in b.text), "the ingest button")
    page.click(ingest)
    done = page.wait_css('[data-testid="stSidebar"] [data-testid="stAlertContentSuccess"]', timeout=90)
    assert "+1 chunks" in done[0].text, done[0].text
    assert chunk_count(page) == before + 1  # the sidebar's count is current without another click
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
    open_sources(page, answer)
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


def test_first_start_answers_while_the_corpus_is_indexed(tmp_path: Path) -> None:
    """A newcomer's first start: the chat box comes before the corpus is indexed, each phase is
    labelled, a question asked meanwhile is answered with "indexing n/m", and the page updates
    itself when the ingest ends. Small chunks make the bundled corpus slow enough to catch."""
    with running_app(tmp_path, RAG_CHUNK_SIZE="48", RAG_CHUNK_OVERLAP="8") as url:
        driver = make_driver(1400, 1000)
        try:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.common.keys import Keys

            driver.get(url)
            page_text = lambda: driver.find_element(By.TAG_NAME, "body").text  # noqa: E731
            deadline = time.monotonic() + 120
            while not driver.find_elements(By.CSS_SELECTOR, 'textarea[data-testid="stChatInputTextArea"]'):
                assert time.monotonic() < deadline, page_text()
                time.sleep(0.1)
            label = page_text()
            assert "First start: docs_corpus/" in label, label
            assert re.search(r"finding files|reading \d+/\d+ files|embedding and storing", label), label
            box = driver.find_element(By.CSS_SELECTOR, 'textarea[data-testid="stChatInputTextArea"]')
            box.send_keys("コサイン類似度とは何ですか？")
            box.send_keys(Keys.ENTER)
            deadline = time.monotonic() + 120
            while not re.search(r"取り込み中 \d+/\d+ ファイル", page_text()):
                assert time.monotonic() < deadline, page_text()
                time.sleep(0.2)
            deadline = time.monotonic() + 300
            while "First start" in page_text() or "ファイル / files" not in page_text():
                assert time.monotonic() < deadline, page_text()
                time.sleep(0.5)
            sidebar = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text
            stored = int(re.search(r"(\d+) chunks", sidebar).group(1))
            report = re.search(r"\+(\d+) chunks", page_text())
            assert report and stored == int(report.group(1)) > 0, (sidebar, page_text())
        finally:
            driver.quit()
