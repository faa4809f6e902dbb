"""Citations that open the source in context: the answer with clickable `[n]`, and the viewer.

The answer is drawn as escaped text in which only our own `[n]` links are markup (a Streamlit
components-v2 element, so a click reaches Python without reloading the page and losing the chat).
A click, or a source card's "open in document" button, opens a dialog with the cited document:
its text with the chunk marked and the supporting sentence highlighted (`rag.answer.grounding`),
scrolled to the chunk; for a PDF the page number and the page rendered as an image beside its
extracted text. Locating the chunk in the file is `rag.lens.source_view`'s job.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import streamlit as st

from rag.answer.grounding import ground, support_for
from rag.errors import RagError
from rag.lens import source_view
from rag.ui.safe_text import literal_line

if TYPE_CHECKING:
    from rag.answer.answerer import Answer
    from rag.retrieve.hits import Hit

_CITATION = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
CHUNK_STYLE = "background:#dbeafe;border-radius:3px;padding:1px 0"
SENTENCE_STYLE = "background:#fde047;border-radius:3px;padding:1px 0;font-weight:600"
DOC_BOX = ("white-space:pre-wrap;line-height:1.75;border:1px solid #ddd;border-radius:6px;"
           "padding:10px 12px;max-height:62vh;overflow:auto;font-size:0.95rem")

_ANSWER_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  let box = parentElement.querySelector('div.rag-answer');
  if (!box) { box = document.createElement('div'); box.className = 'rag-answer'; parentElement.appendChild(box); }
  box.innerHTML = data;
  box.querySelectorAll('a.rag-cite').forEach((a) => {
    a.onclick = (event) => { event.preventDefault(); setTriggerValue('cite', a.dataset.n); };
  });
}
"""
_ANSWER_CSS = """
div.rag-answer { line-height: 1.7; white-space: pre-wrap; }
a.rag-cite { text-decoration: none; font-weight: 600; cursor: pointer; padding: 0 1px;
             border-radius: 3px; }
a.rag-cite:hover { background: rgba(59,130,246,0.15); }
"""
_DOC_JS = """
export default function(component) {
  const { data, parentElement } = component;
  let box = parentElement.querySelector('div.rag-doc');
  if (!box) { box = document.createElement('div'); box.className = 'rag-doc'; parentElement.appendChild(box); }
  box.innerHTML = data;
  const scroller = box.firstElementChild;
  const mark = box.querySelector('mark.rag-sentence') || box.querySelector('mark.rag-chunk');
  if (scroller && mark) {
    requestAnimationFrame(() => { scroller.scrollTop = Math.max(0, mark.offsetTop - scroller.offsetTop - 80); });
  }
}
"""


@st.cache_resource
def _components():
    from streamlit.components.v2 import component

    answer = component("rag_cited_answer", js=_ANSWER_JS, css=_ANSWER_CSS, isolate_styles=False)
    doc = component("rag_source_document", js=_DOC_JS, isolate_styles=False)
    return answer, doc


def answer_html(text: str, valid: set[int]) -> str:
    """The answer escaped, each valid `[n]` a link; line breaks kept, nothing else is markup."""
    out, pos = [], 0
    for m in _CITATION.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        numbers = [int(p) for p in re.split(r"[,，、]", m.group(1))]
        links = [f'<a href="#" class="rag-cite" data-n="{n}" title="open source {n}">[{n}]</a>'
                 if n in valid else html.escape(f"[{n}]") for n in numbers]
        out.append("".join(links))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_answer_text(answer: Answer, *, key: str) -> None:
    """The answer with clickable citations; a click opens the cited source."""
    component, _ = _components()
    valid = {h.rank for h in answer.search.hits}
    result = component(data=answer_html(answer.text, valid), key=key, on_cite_change=lambda: None)
    cite = getattr(result, "cite", None)
    if cite:
        show_source(answer, int(cite))


def open_button(answer: Answer, hit: Hit, *, key: str) -> None:
    """The source card's way into the same viewer."""
    label = "📄 文書で開く / open in document"
    if st.button(label, key=key, help="このチャンクを文書の中で見る / see this chunk in its document"):
        show_source(answer, hit.rank)


def document_html(doc: source_view.SourceDoc) -> str:
    """The document escaped, the chunk marked and the supporting sentence highlighted inside it."""
    text, (c0, c1) = doc.text, doc.chunk
    s0, s1 = doc.sentence if doc.sentence else (c0, c0)
    s0, s1 = max(c0, min(s0, c1)), max(c0, min(s1, c1))
    esc = html.escape
    sentence = (f'<mark class="rag-sentence" style="{SENTENCE_STYLE}">{esc(text[s0:s1])}</mark>'
                if s1 > s0 else "")
    return (f'<div class="rag-doc-text" style="{DOC_BOX}">{esc(text[:c0])}'
            f'<mark class="rag-chunk" style="{CHUNK_STYLE}">{esc(text[c0:s0])}{sentence}'
            f"{esc(text[s1:c1])}</mark>{esc(text[c1:])}</div>")


@st.dialog("出典 / Source", width="large")
def show_source(answer: Answer, rank: int) -> None:
    hit = next((h for h in answer.search.hits if h.rank == rank), None)
    if hit is None:
        st.warning(f"[{rank}] はこの回答の出典にありません / [{rank}] is not among this answer's sources.")
        return
    support = support_for(ground(answer.text, answer.search.hits), rank)
    span = (support.start, support.end) if support and support.start is not None else None
    doc = source_view.open_source(hit, span)
    where = [f"**\\[{rank}\\] {literal_line(hit.source)}**"]
    if hit.page is not None:
        where.append(f"ページ / page **{hit.page}**")
    if hit.metadata.get("heading"):
        where.append(literal_line(str(hit.metadata["heading"])))
    where.append(f"chunk {hit.metadata.get('chunk', '?')} · 文字 / chars "
                 f"{doc.offset + doc.chunk[0]}–{doc.offset + doc.chunk[1]}")
    st.markdown(" · ".join(where))
    if support is not None and support.source_sentence:
        st.caption(f"回答の文 / answer sentence: 「{literal_line(support.sentence)}」 → 根拠 / support "
                   f"{support.score:.2f} (語の重なり / share of its terms found in the highlighted sentence)")
    if doc.note:
        st.warning(doc.note)
    _, doc_component = _components()
    if doc.is_pdf and doc.origin == "file" and doc.path is not None and hit.page is not None:
        left, right = st.columns(2)
        with left:
            try:
                st.image(source_view.render_page(doc.path, hit.page),
                         caption=f"{literal_line(hit.source)} · page {hit.page} (描画 / rendered)")
            except (RagError, OSError) as exc:
                st.warning(f"ページを描画できません / could not render the page: {exc}")
            except Exception as exc:  # pdfium raises its own types on damaged files
                st.warning(f"ページを描画できません / could not render the page ({type(exc).__name__})")
        with right:
            st.caption("抽出テキスト / extracted text (what was indexed)")
            doc_component(data=document_html(doc), key=f"rag_doc_{id(answer)}_{rank}")
    else:
        doc_component(data=document_html(doc), key=f"rag_doc_{id(answer)}_{rank}")
    st.caption("青 = チャンク、黄 = 回答を支える文 / blue = the chunk, yellow = the sentence that "
               "supports the answer")
