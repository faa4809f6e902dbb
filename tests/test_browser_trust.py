"""Trust views in a real browser: citations that open the source at the passage (Markdown and a
PDF page), the keyword "why", the prompt view against the fake OpenAI server, and the map's
neighbours. Same harness as `tests/test_browser.py` (headless Chromium on `streamlit run`)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator

import pytest

from tests import test_browser as harness
from tests.conftest import REPO, free_port, start_process, stop_process
from tests.fake_openai import FakeOpenAI
from tests.test_browser import Page

app_url = harness.app_url  # the extractive app on the bundled corpus
browser = harness.browser  # a Chromium driver that keeps a screenshot when a test fails

pytestmark = pytest.mark.browser

DIALOG = '[data-testid="stDialog"]'


def shot(page: Page, name: str, element, block: str = "start") -> None:
    """A README screenshot with `element` in view; the chat scrolls itself while it settles, so
    scroll again after it has."""
    if harness.SCREENSHOTS is None:
        return
    for _ in range(3):
        page.d.execute_script(f"arguments[0].scrollIntoView({{block: '{block}'}});", element)
        time.sleep(0.7)
    page.shot(name)


def cite_links(message) -> list:
    return message.find_elements("css selector", "a.rag-cite")


def open_citation(page: Page, message, suffix: str):
    """Click the answer's [n] links until one opens a source whose name ends in `suffix`."""
    for i in range(len(cite_links(message))):
        # a dialog still closing (an earlier test's, or the last try's) must not be read as this one
        page.wait_for(lambda: not page.all(DIALOG), "no source dialog open before the click", timeout=30)
        link = cite_links(page.all('[data-testid="stChatMessage"]')[-1])[i]
        rank = link.text.strip()
        page.click(link)
        dialog = page.wait_for(lambda r=rank: next((d for d in page.all(DIALOG) if r in d.text), None),
                               f"the dialog of source {rank}")
        page.wait_for(lambda d=dialog: d.find_elements("css selector", "mark.rag-chunk"), "the marked chunk")
        if re.search(rf"`?[\w/.-]+{re.escape(suffix)}", dialog.text):
            return dialog
        close_dialog(page)
    raise AssertionError(f"no citation opened a {suffix} source: {message.text}")


def close_dialog(page: Page) -> None:
    dialog = page.all(DIALOG)[0]
    close = dialog.find_elements("css selector", 'button[aria-label="Close"]') or \
        dialog.find_elements("css selector", "button")
    page.click(close[0])
    page.wait_for(lambda: not page.all(DIALOG), "the dialog to close")


def answer_sentences(message) -> list[str]:
    text = message.find_elements("css selector", "div.rag-answer")[0].text
    return [re.sub(r"\s*\[\d+\]", "", s).strip() for s in re.findall(r"[^。.!?！？]+[。.!?！？]?", text)
            if "[" in s]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_a_citation_opens_the_markdown_source_at_the_quoted_sentence(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    answer = page.ask("コサイン類似度とは何ですか？")
    assert cite_links(answer), answer.text
    dialog = open_citation(page, answer, ".md")
    chunk = dialog.find_elements("css selector", "mark.rag-chunk")[0]
    sentence = chunk.find_elements("css selector", "mark.rag-sentence")[0]
    quoted = [squash(s) for s in answer_sentences(page.all('[data-testid="stChatMessage"]')[-1])]
    assert squash(sentence.text) in quoted, (sentence.text, quoted)
    # the document around the chunk is there too, not just the chunk
    whole = dialog.find_elements("css selector", "div.rag-doc-text")[0]
    assert len(squash(whole.text)) > len(squash(chunk.text))
    page.wait_for(lambda: sentence.is_displayed() and sentence.rect["height"] > 0, "the sentence in view")
    shot(page, "citation-markdown.png", dialog)
    close_dialog(page)
    # the same viewer from a source card (the Sources section starts collapsed: open it)
    harness.open_sources(page, page.all('[data-testid="stChatMessage"]')[-1])
    card_button = page.wait_for(lambda: next(b for b in page.all('[data-testid="stChatMessage"] button')
                                             if "open in document" in b.text), "a source card's button")
    page.click(card_button)
    dialog = page.wait_css(DIALOG)[0]
    page.wait_for(lambda: dialog.find_elements("css selector", "mark.rag-chunk"), "the chunk from the card")
    close_dialog(page)


def test_a_citation_opens_the_pdf_page_beside_its_text(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    answer = page.ask("Chroma のコレクションに入る一件のレコードは、どんな要素でできていますか？")
    dialog = open_citation(page, answer, ".pdf")
    assert re.search(r"(ページ|page) / page \*?\*?\d|ページ / page \d", dialog.text) or \
        re.search(r"page \d", dialog.text), dialog.text
    image = page.wait_for(lambda: next(i for i in dialog.find_elements("css selector", "img")
                                       if i.get_attribute("naturalWidth") not in (None, "0")),
                          "the rendered page")
    assert int(image.get_attribute("naturalWidth")) >= 600
    sentence = dialog.find_elements("css selector", "mark.rag-sentence")
    assert sentence and squash(sentence[0].text), dialog.text
    shot(page, "citation-pdf.png", dialog)
    close_dialog(page)


INVENTED = "The moon is made of green cheese and sings at night."


def _quoting_reply(messages: list[dict]) -> str:
    """Quote the first sentence of source 1 and add one sentence no source supports."""
    from rag.answer.grounding import sentences

    user = next(m["content"] for m in messages if m.get("role") == "user")
    first = re.search(r'<source id="1"[^>]*>\n(.*?)\n</source>', user, re.S)
    quoted = next((s.text for s in sentences(first.group(1))
                   if len(s.text) > 20 and not s.text.startswith("#")), "") if first else ""
    return f"{quoted.rstrip('。.')} [1]. {INVENTED}"


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    """The app answering with an LLM: the fake OpenAI server (no key: embeddings stay local)."""
    data = tmp_path_factory.mktemp("browser-llm")
    with FakeOpenAI(api_key=None, chat_reply=_quoting_reply) as server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "CHROMA_"))}
        env.update(RAG_DATA_DIR=str(data / "rag"), OPENAI_BASE_URL=server.base_url, PYTHONUNBUFFERED="1")
        url = f"http://127.0.0.1:{port}"
        proc = start_process(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            url + "/_stcore/health", data / "streamlit.log", timeout=90, cwd=data, env=env,
        )
        harness.wait_for_first_start(url)  # the corpus is indexed in the background on a first start
        yield url, server
        stop_process(proc)


def open_expander(page: Page, message, word: str):
    summary = next(e for e in message.find_elements("css selector", '[data-testid="stExpander"] summary')
                   if word in e.text)
    page.click(summary)
    return summary.find_element("xpath", "./ancestor::*[@data-testid='stExpander'][1]")


def test_the_prompt_view_shows_the_messages_sent_with_token_counts(llm_app, browser) -> None:
    url, server = llm_app
    page = Page(browser, url)
    answer = page.ask("What is cosine similarity?")
    assert INVENTED in answer.text
    panel = open_expander(page, answer, "Grounding, prompt and pipeline")
    page.wait_for(lambda: "tokens (cl100k)" in panel.text, "the prompt view")
    sent = server.chat_calls()[-1].json["messages"]
    codes = [c.text for c in panel.find_elements("css selector", '[data-testid="stCode"] code, pre code')]
    assert any("You answer questions using only the numbered sources" in c for c in codes), codes
    assert any("Question: What is cosine similarity?" in c for c in codes)
    from rag.tokens import count_tokens

    for message in sent:
        assert f"{message['role']} · {count_tokens(message['content'])} tokens (cl100k)" in panel.text
    assert re.search(r"first token [\d.]+ ms .*total [\d.]+ ms", panel.text), panel.text
    assert "1 sentence(s) share less than 50%" in panel.text  # the invented sentence is marked
    shot(page, "grounding.png", panel)
    shot(page, "prompt-view.png", panel.find_elements("css selector", '[data-testid="stCode"]')[0])
    # the LLM's [1] opens its source too, at the sentence it quoted
    quoted = squash(answer.text.split("[1]")[0].split("\n")[-1])
    page.click(cite_links(page.all('[data-testid="stChatMessage"]')[-1])[0])
    dialog = page.wait_css(DIALOG)[0]
    sentence = page.wait_for(lambda: dialog.find_elements("css selector", "mark.rag-sentence"),
                             "the quoted sentence")[0]
    assert squash(sentence.text).rstrip("。.").endswith(quoted[-20:].rstrip("。.")), (sentence.text, quoted)
    close_dialog(page)


def test_the_keyword_why_highlights_matched_terms_and_adds_up(app_url: str, browser) -> None:
    page = Page(browser, app_url)
    answer = page.ask("HNSW の ef_search を大きくするとどうなりますか？")
    panel = open_expander(page, answer, "Show me the embedding")
    tabs = page.wait_for(lambda: panel.find_elements("css selector", '[data-testid="stTab"]'), "tabs")
    page.click(next(t for t in tabs if "なぜこの出典" in t.text))  # tabs in the question's language
    chunk = page.wait_css(".rag-keyword-chunk")[0]
    marks = chunk.find_elements("css selector", "mark.kw")
    assert marks and {m.text.lower() for m in marks} & {"hnsw", "ef", "search"}, chunk.text
    table = page.wait_css("table.rag-fusion")[0]
    values = {row.find_elements("css selector", "td")[0].text: float(
        row.find_elements("css selector", "span.rag-value")[0].text)
        for row in table.find_elements("css selector", "tr")}
    assert abs(values["vector part"] + values["keyword part"] - values["fused"]) <= 1e-6 + 1e-12
    shot(page, "keyword-why.png", table, block="center")


def test_clicking_a_map_point_shows_its_neighbours_in_both_spaces(app_url: str, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    page = Page(browser, app_url)  # the chat page first: it ingests the corpus on a first start
    browser.get(app_url + "/explorer")
    page.wait_css(".js-plotly-plot .scatterlayer .trace .points path.point", timeout=90)
    page.idle()
    assert "variance kept per axis: PC1" in page.text()
    point = page.all(".js-plotly-plot .scatterlayer .trace .points path.point")[3]
    page.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(page.d).move_to_element(point).click().perform()
    shared = page.wait_css(".rag-map-shared", timeout=60)[0]
    assert re.search(r"shared: \d of 5", shared.text), shared.text
    text = page.text()
    assert "nearest in the full vector space" in text and "nearest on the map" in text
    shot(page, "map-neighbours.png", shared, block="end")
    # finding a point by source rings it and, when it is the only match, explains it too
    box = page.wait_css('input[aria-label^="点を探す"]')[0]
    box.send_keys("mmr_diversity")
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.ENTER)
    page.idle()
    page.wait_for(lambda: re.search(r"\d+ 件 / points found", page.text()), "the found points")


_FIGURE = """
const gd = document.querySelector('.js-plotly-plot');
if (!gd || !gd.layout || !gd._fullLayout) return null;
const title = gd.layout.title && (gd.layout.title.text || gd.layout.title);
return {title: String(title || ''), three: !!gd._fullLayout.scene,
        traces: gd.data.map(t => ({name: t.name, x: t.x, y: t.y, z: t.z || null}))};
"""


def _figure(page: Page, method: str, dims: int) -> dict:
    """The drawn map once it shows `method` in `dims` dimensions."""
    def drawn():
        fig = page.d.execute_script(_FIGURE)
        return fig if fig and f"{method.upper()} ·" in fig["title"] and fig["three"] == (dims == 3) else None

    return page.wait_for(drawn, f"the {method} {dims}-D map to be drawn", timeout=120)


def _choose(page: Page, group: str, label: str) -> None:
    control = next(c for c in page.all('[data-testid="stButtonGroup"]')
                   if group in c.find_element("xpath", "./ancestor::*[@data-testid='stElementContainer'][1]").text)
    page.click(next(b for b in control.find_elements("css selector", "button") if b.text.strip() == label))


def _inside_hits(fig: dict, dims: int) -> bool:
    """The query star lies within the box its hits span on the map (on every axis drawn)."""
    query = next(t for t in fig["traces"] if t["name"] == "query")
    hits = next(t for t in fig["traces"] if t["name"] == "hits")
    axes = ["x", "y", "z"][:dims]
    return all(min(hits[a]) - 1e-9 <= query[a][0] <= max(hits[a]) + 1e-9 for a in axes)


def test_switching_maps_redraws_them_with_the_query_among_its_hits(app_url: str, browser) -> None:
    from selenium.webdriver.common.keys import Keys

    page = Page(browser, app_url)  # the chat page first: it ingests the corpus on a first start
    browser.get(app_url + "/explorer")
    page.wait_css(".js-plotly-plot .main-svg", timeout=90)
    page.idle()
    box = page.wait_css('input[aria-label^="地図に置くテキスト"]')[0]
    box.send_keys("コサイン類似度とは？")
    box.send_keys(Keys.ENTER)
    page.idle()
    pca = page.wait_for(lambda: (fig := _figure(page, "pca", 2)) and {"query", "hits"} <= {
        t["name"] for t in fig["traces"]} and fig, "the query and its hits on the PCA map")
    _choose(page, "手法 / method", "tsne")
    tsne = _figure(page, "tsne", 2)
    chunks = [t for t in tsne["traces"] if t["name"] not in ("query", "hits", "query → hits")]
    before = {t["name"]: (t["x"], t["y"]) for t in pca["traces"]}
    assert any((t["x"], t["y"]) != before.get(t["name"]) for t in chunks)  # a different map is drawn
    assert _inside_hits(tsne, 2), tsne["traces"]
    _choose(page, "次元 / dims", "3")
    tsne3 = _figure(page, "tsne", 3)
    assert _inside_hits(tsne3, 3)
    _choose(page, "手法 / method", "umap")
    assert _inside_hits(_figure(page, "umap", 3), 3)
    # back to a map already drawn: the same map again, the query still there
    _choose(page, "手法 / method", "tsne")
    again = _figure(page, "tsne", 3)
    assert again["traces"] == tsne3["traces"]
    assert "(cached)" in page.text()
