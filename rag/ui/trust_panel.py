"""Under each answer, "Grounding, prompt and pipeline": what to trust and how it was made.

Confidence (exp of the mean logprob, LLM mode with logprobs), a retrieval note in plain words when
the best hit is weak for this model, each answer sentence with the source sentence that supports
it (unsupported ones marked), then the exact messages sent with their token counts and an
estimated cost (LLM mode) or every candidate sentence with its score parts (extractive mode), and
the time each stage took. Text from documents and the model is shown as text (`st.code`,
dataframes), never as Markdown. Numbers come from `rag.answer.grounding` and `rag.lens`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from rag.answer.grounding import SUPPORT_THRESHOLD, confidence, ground
from rag.lens import extractive_view, prompt_view, score_meaning
from rag.ui import state
from rag.ui.safe_text import literal_line

if TYPE_CHECKING:
    from rag.answer.answerer import Answer

LABEL = "🧾 根拠・プロンプト・処理 / Grounding, prompt and pipeline"
T = TypeVar("T")


def memo(answer: Answer, name: str, compute: Callable[[], T]) -> T:
    """`compute()` once per answer for this browser session: every rerun redraws the whole chat,
    and these views would otherwise re-embed candidate sentences and re-read the collection for
    every past answer each time."""
    store: dict[tuple, Any] = st.session_state.setdefault("_rag_trust_memo", {})
    key = (id(answer), answer.question, answer.text, name)
    if key not in store:
        store[key] = compute()
    return store[key]


def render_trust_panel(answer: Answer, *, key: str) -> None:
    with st.expander(LABEL, expanded=False):
        _confidence(answer)
        _grounding(answer)
        if answer.mode == "llm":
            _prompt(answer)
        else:
            _candidates(answer)
        _timings(answer)


def _confidence(answer: Answer) -> None:
    conf = confidence(answer.logprobs)
    if conf is not None:
        st.metric("確信度 / confidence", f"{conf:.1%}",
                  help="exp(平均 logprob) = モデルが自分の各トークンに与えた確率の幾何平均 / "
                       "exp(mean logprob): the geometric mean of the probabilities the model gave "
                       "its own tokens. High means fluent and sure, not necessarily true.")
    elif answer.mode == "llm":
        st.caption("確信度なし: サーバーが logprobs を返しませんでした / no confidence: the server "
                   "returned no logprobs.")
    hits = answer.search.hits
    if not hits:
        return
    scale = memo(answer, "scale", lambda: _scale(answer))
    if scale is None:
        return
    note, pct, total, sampled = scale
    if note is not None:
        (st.warning if note.weak else st.info)(note.text(answer.lang))
    sample = " (sample)" if sampled else ""
    st.caption("類似度の読み方 / reading the scores: "
               + score_meaning.model_line(answer.search.embedding.model)
               + " パーセンタイル = この質問に対して何 % のチャンクより近いか / percentile = the share "
               f"of the {total} chunks{sample} this source beats for this question: "
               + ", ".join(f"[{h.rank}] {h.score:.3f} → {pct[h.rank]:.1f} %" for h in hits))


def _scale(answer: Answer) -> tuple[score_meaning.RetrievalNote | None, dict[int, float], int, bool] | None:
    """The retrieval note and each hit's percentile, from the question's similarity to every chunk."""
    from rag.errors import RagError
    from rag.ui.debug_panel import context_for

    try:
        ctx = context_for(answer.search.embedding)
    except RagError:  # the collection is gone (reset) or empty: show the cosines alone
        return None
    sims = ctx.vectors.similarities(answer.search.query_vector)
    hits = answer.search.hits
    return (score_meaning.retrieval_note(hits, sims, answer.search.embedding.model),
            score_meaning.hit_percentiles(sims, hits), ctx.vectors.total, ctx.vectors.sampled)


def percentiles(answer: Answer) -> dict[int, float]:
    """Each hit's percentile among the question's similarities to every chunk (rank -> 0-100);
    empty when the collection cannot be read (the cards then show the cosine alone)."""
    if not answer.search.hits:
        return {}
    scale = memo(answer, "scale", lambda: _scale(answer))
    return scale[1] if scale else {}


def _grounding(answer: Answer) -> None:
    supports = ground(answer.text, answer.search.hits)
    if not supports:
        return
    st.markdown("**根拠 / Grounding** — 回答の各文と、それを最もよく支える出典の文 / each answer "
                "sentence and the source sentence that supports it best")
    st.dataframe({
        "answer sentence": [s.sentence for s in supports],
        "cites": [" ".join(f"[{n}]" for n in s.cited) for s in supports],
        "source": [f"[{s.rank}]" if s.rank else "—" for s in supports],
        "supporting sentence": [s.source_sentence or "—" for s in supports],
        "support": [round(s.score, 2) for s in supports],
        "": ["✓" if s.supported else "⚠ unsupported" for s in supports],
    }, hide_index=True)
    weak = [s for s in supports if not s.supported]
    if weak and answer.mode == "llm":
        st.warning(f"{len(weak)} 文は出典に裏付けがありません（語の重なり < {SUPPORT_THRESHOLD:.0%}）/ "
                   f"{len(weak)} sentence(s) share less than {SUPPORT_THRESHOLD:.0%} of their terms "
                   "with any source sentence: check them against the sources.")
    st.caption("support = 回答文の語（BM25 と同じ 2-gram/単語）のうち出典の文にもある割合 / share of the "
               "answer sentence's terms found in the source sentence")


def _prompt(answer: Answer) -> None:
    report = prompt_view.prompt_report(answer)
    if report is None:
        st.caption("LLM には何も送られていません（出典なし）/ nothing was sent to the LLM (no sources).")
        return
    st.markdown(f"**プロンプト / The exact prompt** — `{report.model}`")
    if report.rewritten:
        st.caption(f"追質問の書き換え / follow-up rewritten for retrieval: {literal_line(report.rewritten)}")
    for message in report.messages:
        st.markdown(f"`{message.role}` · **{message.tokens}** tokens (cl100k)")
        st.code(message.content, language=None, wrap_lines=True)
    cost = ("—" if report.cost_usd is None else f"${report.cost_usd:.6f}")
    a, b, c = st.columns(3)
    a.metric("入力 / input tokens", report.input_tokens)
    b.metric("出力 / output tokens", report.output_tokens)
    c.metric("推定費用 / est. cost", cost)
    st.caption(
        "入力 = 各メッセージ + 1 通あたり 3 トークンの枠 + 返信の 3 / input = messages + 3 framing "
        f"tokens each + 3 for the reply. Output counted by {report.output_counted}. "
        + ("価格表にないモデル / a model without a known price (local server?)."
           if report.cost_usd is None else "OpenAI の定価による概算 / at OpenAI list price; "
           "gpt-4o/4.1 use o200k tokens, so cl100k counts are an estimate.")
    )


def _candidates(answer: Answer) -> None:
    report = memo(answer, "candidates",
                  lambda: extractive_view.extractive_report(answer, state.get_answerer()))
    if report is None:
        return
    st.markdown("**候補の文 / Candidate sentences** — 抽出モードが比べた文と得点の内訳 / every "
                "sentence the extractive answerer weighed, with its score parts")
    st.caption(f"選び方 / the rule: {report.rule}")
    parts = sorted({k for r in report.rows for k in r.parts})
    table: dict[str, list] = {
        "✓": ["★" if r.chosen else "" for r in report.rows],
        "source": [f"[{r.source}]" for r in report.rows],
        "sentence": [r.sentence for r in report.rows],
    }
    for name in parts:
        table[name] = [round(r.parts.get(name, 0.0), 3) for r in report.rows]
    table["score"] = [None if r.score == float("-inf") else round(r.score, 3) for r in report.rows]
    table["why"] = [r.why for r in report.rows]
    st.dataframe(table, hide_index=True)
    for note in report.notes:
        st.caption(note)


def _timings(answer: Answer) -> None:
    stages = prompt_view.stage_timings(answer)
    if not stages:
        return
    st.markdown("**処理時間 / Pipeline timings** — "
                + " · ".join(f"{stage} **{ms:.1f}** ms" for stage, ms in stages))
    if any(s == "first token" for s, _ in stages):
        st.caption("first token = LLM に送ってから最初の文字まで / from sending the prompt to the first "
                   "streamed text")
