"""The debug panel under each answer: seven tabs from the question's tokens to the next-token odds.

Tokens, Vector, Similarity, Projection, Compare, Why this hit, Next token. The tabs are lazy (only
the open one runs) and the panel is a fragment (switching tabs or changing a control reruns the
panel, not the chat), so opening it costs one view at a time. Numbers come from `rag.lens.vectors`,
figures from `rag.lens.plots`; this module only lays them out. The Compare view is shared with the
Explorer page; the map is `rag.ui.map_view`.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from rag.errors import RagError
from rag.lens import collection, logprobs, plots, score_meaning, why
from rag.lens import tokens as token_view
from rag.lens import vectors as vector_view
from rag.retrieve import watch
from rag.ui import scores, state
from rag.ui.i18n import mode_name
from rag.ui.keyword_why import render_keyword_why
from rag.ui.map_view import projection_controls, render_map
from rag.ui.safe_text import literal_markdown

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from langchain_core.embeddings import Embeddings

    from rag.answer.answerer import Answer
    from rag.embed.providers import EmbeddingInfo
    from rag.retrieve.hits import Hit

log = logging.getLogger(__name__)

FIRST_VALUES = 16
_PLOT_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
COMPARE_DEFAULTS = ("我輩は猫である。", "拙者は猫でござる。")
JA_NOTE = (
    "日本語は英語より 1 トークンあたりの文字数が少なく（漢字 1 文字が 2〜3 トークンになることも）、"
    "同じ内容でもトークン数＝料金と長さの上限を多く使います。 / Japanese packs fewer characters "
    "into each token than English (one kanji can cost 2-3 byte-fragment tokens), so the same "
    "content uses more of a model's token budget."
)


DIMS_NOTE = (
    "次元とは、ベクトルを作る {dims} 個の数のうちの 1 つの位置（#80 = 81 番目の数）です。モデルが学習で"
    "決めた座標で、「#80 = 動物」のような人が読める意味はありません。意味は多くの次元の組み合わせに"
    "あります。棒は、質問とチャンクの同じ位置の数の積 q[d] × c[d] のうち、類似度を最も押し上げた（緑）"
    "・押し下げた（赤）20 か所です。全部の積の合計が内積＝類似度です。 / A dimension is one position "
    "among the {dims} numbers that make up a vector (#80 is the 81st number). The model chose these "
    "coordinates while training; no single one means anything a person can name (there is no "
    "'#80 = animals'): meaning lives in combinations of many. Each bar is the product of the "
    "question's and the chunk's numbers at one position, q[d] × c[d]; shown are the 20 that raise "
    "the score most (green) and lower it most (red). All {dims} products added up are the dot "
    "product, which is the cosine for vectors of length 1."
)


@dataclass
class Context:
    """What every view needs: the embedder and collection the answer was searched with."""

    info: EmbeddingInfo
    embeddings: Embeddings
    collection: Collection
    vectors: collection.CollectionVectors


def context_for(info: EmbeddingInfo | None = None) -> Context:
    """The cached searcher's embedder and collection (or those of `info` if settings moved on)."""
    settings = state.settings()
    searcher = state.get_searcher(settings)
    watched = False
    if info is None or info == searcher.info:
        info, embeddings, coll = searcher.info, searcher.embeddings, searcher.collection
        watched = watch.watched(settings)  # the app's searcher keeps a store watcher (ui/state.py)
    else:
        from rag import store
        from rag.embed.providers import get_embeddings

        embeddings = get_embeddings(settings, info)
        coll = store.collection(settings, info, create=False)
    vectors = collection.vectors_for(settings, info, coll, watched=watched)
    return Context(info, embeddings, coll, vectors)


def render_debug_panel(answer: Answer, *, key: str) -> None:
    """The seven views for one answer; call it inside an expander under the answer."""
    _panel(answer, key)


@st.fragment
def _panel(answer: Answer, key: str) -> None:
    try:
        lang = "ja" if answer.lang == "ja" else "en"
        tabs = st.tabs([labels[lang] for labels, _ in VIEWS], key=f"{key}_tab", on_change="rerun")
        for tab, (_, view) in zip(tabs, VIEWS, strict=True):
            if tab.open:
                with tab:
                    view(answer, key)
    except RagError as exc:  # the fragment reruns outside the chat's error handler
        st.error(str(exc))
    except Exception as exc:
        log.exception("debug panel failed")
        st.error(f"この表示でエラーが発生しました / this view failed ({type(exc).__name__}); "
                 "details are in the server log.")


# --- 1. tokens -------------------------------------------------------------------------------------

_CHIP = ("display:inline-block;margin:2px;padding:2px 5px;border-radius:6px;"
         "border:1px solid #ccc;background:#f6f8fa;text-align:center;vertical-align:top;"
         "font-family:monospace;line-height:1.25")
_SPLIT = ("display:inline-block;margin:2px;padding:2px 3px;border-radius:8px;"
          "border:1px dashed #d62728;vertical-align:top;text-align:center")
_ID = "display:block;font-size:0.7em;color:#888"


MAX_CHIPS = 300
"""Tokens drawn as chips; a long question's full list is a download (thousands of chips took
~13 s to draw and a 25,000 px panel)."""
_BYTES = re.compile(r"^<[0-9a-f]{2}(?: [0-9a-f]{2})*>$")


def _show(text: str) -> str:
    """A token's text with spaces and line breaks made visible; byte fragments keep their spaces
    (`<e9 a1>` is two bytes, not a space token)."""
    if _BYTES.match(text):
        return html.escape(text)
    return html.escape(text).replace(" ", "␣").replace("\n", "↵") or "∅"


def token_chips_html(text: str, limit: int | None = None) -> str:
    """cl100k chips with IDs; a character split into byte tokens is boxed with its fragments.

    With `limit`, only the groups holding the first `limit` tokens are drawn."""
    parts = []
    drawn = 0
    for group in token_view.token_groups(text):
        if limit is not None and drawn >= limit:
            break
        drawn += len(group.tokens)
        chips = "".join(
            f'<span style="{_CHIP}">{_show(t.text)}<span style="{_ID}">{t.id}</span></span>'
            for t in group.tokens
        )
        if group.split:
            parts.append(f'<span style="{_SPLIT}" title="{len(group.tokens)} tokens for '
                         f'{html.escape(group.text)}"><b>{_show(group.text)}</b><br>{chips}</span>')
        else:
            parts.append(chips)
    return f'<div style="line-height:2.4">{"".join(parts)}</div>'


def token_csv(text: str) -> str:
    """Every cl100k token of the text as `position,id,text` rows (the chips are capped)."""
    import csv
    import io

    from rag.tokens import tokenize

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["position", "id", "text"])
    for i, token in enumerate(tokenize(text)):
        writer.writerow([i, token.id, token.text])
    return out.getvalue()


def pieces_html(pieces: list[str]) -> str:
    return '<div style="line-height:2.2">' + "".join(
        f'<span style="{_CHIP}">{_show(p)}</span>' for p in pieces) + "</div>"


def render_tokens(text: str, info: EmbeddingInfo, *, note: bool = True, key: str = "tokens") -> None:
    stats = token_view.token_stats(text)
    a, b, c = st.columns(3)
    a.metric("トークン数 / tokens", stats.tokens)
    b.metric("文字数 / characters", stats.chars)
    c.metric("文字/トークン / chars per token", f"{stats.chars_per_token:.2f}")
    st.markdown(token_chips_html(text, MAX_CHIPS), unsafe_allow_html=True)
    if stats.tokens > MAX_CHIPS:
        left, right = st.columns([3, 1])
        left.caption(f"最初の {MAX_CHIPS} トークンだけ表示 / showing the first {MAX_CHIPS} of "
                     f"{stats.tokens:,} tokens; 全部はダウンロードで / all of them in the download")
        right.download_button("tokens.csv ⬇", lambda: token_csv(text), file_name="tokens.csv",
                              mime="text/csv", key=f"{key}_tokens_csv", on_click="ignore")
    if note:
        st.caption("cl100k_base: OpenAI の埋め込みモデルが読むトークン / the encoding OpenAI's "
                   "embedding models read. `<e7 8c>` = UTF-8 の断片 / byte fragments of one "
                   "character (boxed in red).")
        st.caption(JA_NOTE)
    from rag.embed.providers import E5_MODEL, model_pieces

    pieces = model_pieces(info, text)
    if pieces is not None:
        shown = "" if len(pieces) <= MAX_CHIPS else f" (first {MAX_CHIPS} shown)"
        st.markdown(f"**{info.model}** のサブワード / its own sentencepiece pieces: "
                    f"{len(pieces):,}{shown}")
        if info.model == E5_MODEL:
            st.caption("e5 は質問を `query: ` を付けて読みます（文書は `passage: `）。XLM-R の "
                       "sentencepiece 語彙（25 万語）/ e5 reads a question as `query: …` (chunks as "
                       "`passage: …`), in XLM-R's 250k-piece sentencepiece vocabulary, between <s> and </s>.")
        st.markdown(pieces_html(pieces[:MAX_CHIPS]), unsafe_allow_html=True)


def _view_tokens(answer: Answer, key: str) -> None:
    text = answer.standalone_question
    if text != answer.question:
        st.caption(f"検索に使った質問 / question as embedded: {literal_markdown(text)}")
    render_tokens(text, answer.search.embedding, key=key)


# --- 2. vector -------------------------------------------------------------------------------------


def _hit_vectors(answer: Answer, ctx: Context | None) -> list[tuple[Hit, np.ndarray]]:
    out = []
    for hit in answer.search.hits:
        vec = collection.hit_vector(hit, ctx.vectors if ctx else None)
        if vec is not None:
            out.append((hit, vec))
    return out


def _view_vector(answer: Answer, key: str) -> None:
    ctx = context_for(answer.search.embedding)
    query = np.asarray(answer.search.query_vector, dtype=np.float64)
    summary = vector_view.summarize(query)
    cols = st.columns(5)
    cols[0].metric("次元 / dims", summary.dims)
    cols[1].metric("ノルム / norm", f"{summary.norm:.4f}")
    cols[2].metric("min", f"{summary.minimum:+.4f}")
    cols[3].metric("max", f"{summary.maximum:+.4f}")
    cols[4].metric("mean", f"{summary.mean:+.4f}")
    st.caption(f"{answer.search.embedding.provider} · {answer.search.embedding.model} — "
               f"最初の {FIRST_VALUES} 値 / first {FIRST_VALUES} values of the query vector")
    st.dataframe({"dim": list(range(FIRST_VALUES)),
                  "value": [round(float(x), 6) for x in query[:FIRST_VALUES]]},
                 hide_index=True, height=220, width=320)
    pairs = _hit_vectors(answer, ctx)
    rows = [("query", query)] + [(f"[{h.rank}] {h.source}", v) for h, v in pairs]
    labelled = {label: v for label, v in rows}
    a, b = st.columns(2)
    a.download_button("CSV ⬇", lambda: vector_view.vector_csv(labelled), file_name="vectors.csv",
                      mime="text/csv", key=f"{key}_csv", on_click="ignore")
    b.download_button("JSON ⬇", lambda: vector_view.vector_json(labelled), file_name="vectors.json",
                      mime="application/json", key=f"{key}_json", on_click="ignore")
    st.plotly_chart(plots.heat_strips(rows, title="全次元 / every dimension (red +, blue −)"),
                    key=f"{key}_heat")


# --- 3. similarity ---------------------------------------------------------------------------------


def _score_table(hits: list[Hit], question: str) -> dict[str, list]:
    """One row per hit: the score that ranked it first, then the cosine, then BM25 (named).

    Few, narrow columns, the source last, so that the numbers fit a phone's width. BM25 reads
    `other language` for a chunk it cannot match (the other script than the question), its rank
    only when the chunk was among BM25's candidates."""
    kind = scores.ranking_kind(hits[0])
    table: dict[str, list] = {"rank": [h.rank for h in hits]}
    if kind != "cosine":
        table[scores.name(kind, "en")] = [round(scores.ranking_value(h), 4) for h in hits]
    table["cosine"] = [round(h.score, 4) for h in hits]
    if kind == "fused":
        table["BM25"] = [_bm25_cell(h, question) for h in hits]
    table["source"] = [h.source for h in hits]
    return table


def _score_columns(table: dict[str, list]) -> dict[str, object]:
    """Every score to 3 decimals and the percentile with its `%`: left to the grid, a score of
    exactly 1 read `1` beside `0.3799`, and `99.4` did not say it was a share of the chunks."""
    config: dict[str, object] = {"rank": st.column_config.NumberColumn(width=50)}
    for name in table:
        if name == "percentile":
            config[name] = st.column_config.NumberColumn(
                format="%.1f%%", help="この質問で何 % のチャンクより近いか / the share of all chunks "
                "this hit's cosine beats for this question")
        elif name not in ("rank", "BM25", "source"):
            config[name] = st.column_config.NumberColumn(format="%.3f")
    return config


def _bm25_cell(hit: Hit, question: str) -> str:
    if hit.bm25_score is None:
        return "—"
    if scores.cross_script(hit, question):
        return "other language"
    return f"{hit.bm25_score:.2f}" + (f" (#{hit.bm25_rank})" if hit.bm25_rank else "")


def _view_similarity(answer: Answer, key: str) -> None:
    hits = answer.search.hits
    if not hits:
        st.info("該当なし / no hits passed the threshold")
        return
    ctx = context_for(answer.search.embedding)
    question = answer.standalone_question
    kind = scores.ranking_kind(hits[0])
    st.plotly_chart(plots.score_bars(hits, values=[scores.ranking_value(h) for h in hits],
                                     axis_title=scores.name(kind, "en")),
                    key=f"{key}_bars", config=_PLOT_CONFIG)
    if kind != "cosine":
        st.caption(f"{mode_name(answer.search.mode, 'ja')}モードの順位は{scores.name(kind, 'ja')}で決まり、コサイン類似度の順"
                   f"とは限りません / in {answer.search.mode} mode hits are ranked by the "
                   f"{scores.name(kind, 'en')}, so their cosines need not be in order.")
    sims = ctx.vectors.similarities(answer.search.query_vector)
    pct = score_meaning.hit_percentiles(sims, hits)
    table: dict[str, list] = {}
    for name, values in _score_table(hits, question).items():
        table[name] = values
        if name == "cosine":  # beside the cosine: its rank among all chunks, same for any model
            table["percentile"] = [round(pct[h.rank], 1) for h in hits]
    st.dataframe(table, hide_index=True, column_config=_score_columns(table))
    st.caption(score_meaning.model_line(answer.search.embedding.model))
    st.plotly_chart(plots.similarity_histogram(sims, hits), key=f"{key}_hist", config=_PLOT_CONFIG)
    best = max(h.score for h in hits)
    beaten = float((sims < best - 1e-6).mean()) if sims.size else 0.0
    note = collection.sample_note(ctx.vectors)
    sample = f" ({note})" if note else ""
    st.caption(
        f"全 {ctx.vectors.total} チャンクとのコサイン類似度{sample} / cosine similarity to all "
        f"{ctx.vectors.total} chunks{sample}: median {np.median(sims):.3f}, max {sims.max():.3f}. "
        f"出典の中で最も高いコサイン {best:.3f} は {beaten:.1%} のチャンクより上 / the hits' best cosine "
        f"{best:.3f} beats {beaten:.1%} of chunks"
        + ("" if best >= sims.max() - 1e-6 else
           " (higher-cosine chunks lost on the ranking score / 順位スコアで外れたチャンクの方がコサインは高い)")
        + f". モード / mode: {answer.search.mode}"
    )


# --- 4. projection ---------------------------------------------------------------------------------


def _view_projection(answer: Answer, key: str) -> None:
    ctx = context_for(answer.search.embedding)
    method, dims, colour = projection_controls(key)
    render_map(ctx, key=key, method=method, dims=dims, colour=colour,
               query=answer.search.query_vector, query_text=answer.standalone_question,
               hits=answer.search.hits)


# --- 5. compare ------------------------------------------------------------------------------------


def render_compare(ctx: Context, *, key: str) -> None:
    """Two texts side by side, their tokens, vectors and cosine; then any text's nearest chunks."""
    left, right = st.columns(2)
    texts = []
    for col, default, side in ((left, COMPARE_DEFAULTS[0], "a"), (right, COMPARE_DEFAULTS[1], "b")):
        with col:
            text = st.text_input(f"テキスト / text {side.upper()}", default, key=f"{key}_cmp_{side}")
            texts.append(text)
            if text:
                stats = token_view.token_stats(text)
                st.caption(f"{stats.tokens} tokens · {stats.chars} chars")
                st.markdown(token_chips_html(text, MAX_CHIPS), unsafe_allow_html=True)
    if all(texts):
        va, vb = (np.asarray(v) for v in ctx.embeddings.embed_documents(texts))
        st.metric("コサイン類似度 / cosine similarity", f"{vector_view.cosine(va, vb):.4f}")
        st.plotly_chart(plots.heat_strips([("A", va), ("B", vb), ("A×B", va * vb)]),
                        key=f"{key}_cmp_heat")
    st.markdown("**最も近いチャンク / nearest chunks of any text**")
    # keyed by text A: a widget keeps its first value, so a fixed key kept the old A's neighbours
    follow = texts[0] if texts else ""
    probe = st.text_input("テキスト / text", follow, key=f"{key}_cmp_probe_{_short_digest(follow)}")
    if probe:
        vec = ctx.embeddings.embed_query(probe)
        near = collection.nearest_chunks(ctx.collection, ctx.vectors, vec, 5)
        st.dataframe({
            "cosine": [round(s, 4) for s, _, _ in near],
            "source": [source for _, source, _ in near],
            "text": [" ".join(text.split())[:200] for _, _, text in near],
        }, hide_index=True)


def _short_digest(text: str) -> str:
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _view_compare(answer: Answer, key: str) -> None:
    render_compare(context_for(answer.search.embedding), key=key)


# --- 6. why this hit -------------------------------------------------------------------------------


def why_table(explained: why.Why) -> dict[str, list[str]]:
    """The numbers behind one score, each with where it comes from."""
    def num(x: float | None) -> str:
        return "—" if x is None else f"{x:.6f}"

    return {
        "": ["Chroma distance", "metric", "1 − distance", "q · c (dot)", "cosine", "|q|, |c|"],
        "value": [num(explained.distance), explained.metric, num(explained.similarity_from_distance), num(explained.dot),
                  num(explained.cosine), f"{explained.query_norm:.4f}, {explained.hit_norm:.4f}"],
        "意味 / meaning": [
            "Chroma が返した生の値 / raw value returned by the index",
            "コレクションの距離関数 / the collection's distance function",
            "画面の類似度スコア / the similarity shown everywhere",
            "保存ベクトルの内積 / dot product of the stored vectors",
            "q·c / (|q| |c|)",
            "ベクトルの長さ / vector lengths (1 = normalised)",
        ],
    }


def _view_why(answer: Answer, key: str) -> None:
    hits = answer.search.hits
    if not hits:
        st.info("該当なし / no hits")
        return
    ctx = context_for(answer.search.embedding)
    hit = st.selectbox("チャンク / hit", hits, key=f"{key}_why_hit",
                       format_func=lambda h: f"[{h.rank}] {h.score:.3f} {h.source}")
    render_keyword_why(answer, hit, key)
    st.markdown("**ベクトル側 / The vector side (cosine)**")
    vec = collection.hit_vector(hit, ctx.vectors)
    if vec is None:
        st.warning("このチャンクのベクトルが見つかりません / no stored vector for this chunk")
        return
    metric = why.collection_metric(ctx.collection)
    explained = why.why_hit(answer.search.query_vector, vec, hit.distance, metric=metric)
    st.table(why_table(explained))
    where = ("HNSW 近似検索の距離 / the distance from Chroma's HNSW index" if explained.distance is not None
             else f"{mode_name(answer.search.mode, 'ja')}モードではチャンクを ID で取得するため距離なし / in "
                  f"{answer.search.mode} mode chunks are fetched by id, so Chroma returned no "
                  "distance; the cosine comes from the stored vectors")
    st.caption(
        f"{where}. cosine distance = 1 − cos(q, c); |q| = {explained.query_norm:.4f}, "
        f"|c| = {explained.hit_norm:.4f}, so q · c = cos × |q| × |c|. "
        f"正の寄与の合計 / positive products sum to {explained.positive_share:+.4f}, "
        f"負 / negative to {explained.negative_share:+.4f}."
    )
    extras = {n: getattr(hit, n) for n in ("vector_rank", "bm25_rank", "bm25_score", "fused_score")
              if getattr(hit, n) is not None}
    if extras:
        st.caption(" · ".join(f"{n} = {v:.4f}" if isinstance(v, float) else f"{n} = {v}"
                              for n, v in extras.items()))
    st.plotly_chart(plots.contributions(explained), key=f"{key}_why", config=_PLOT_CONFIG)
    st.caption(DIMS_NOTE.format(dims=len(vec)))


# --- 7. next token ---------------------------------------------------------------------------------


def _view_next_token(answer: Answer, key: str) -> None:
    choices = logprobs.token_choices(answer.logprobs)
    if not choices:
        if answer.mode == "extractive":
            st.info(
                "抽出モードでは LLM がトークンを生成しないため、次トークン確率はありません。"
                "OPENAI_API_KEY（互換サーバーなら OPENAI_BASE_URL も）を設定すると表示されます。 / "
                "Extractive mode quotes document sentences; no LLM generated tokens, so there are "
                "no next-token probabilities. Set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                "compatible server such as Ollama or llama.cpp) to see them."
            )
            st.caption("オフラインの言語モデル（Gemma 3 270M）が任意の文章の続きをどう選ぶかは、左の"
                       "「次トークン」ページで見られます / the Next token page (left) shows how an "
                       "offline language model (Gemma 3 270M) would continue any text you type.")
        else:
            st.info(
                f"{answer.llm} は logprobs を返しませんでした / the server returned no logprobs "
                "(RAG_LLM_LOGPROBS=false, or the server does not support them)."
            )
        return
    mean_p = float(np.mean([c.probability for c in choices]))
    unsure = sum(c.probability < 0.5 for c in choices)
    st.caption(f"{len(choices)} tokens · 平均確率 / mean p {mean_p:.1%} · p < 50%: {unsure}. "
               "濃い色ほど確信が低い。ホバーで候補 / darker = less sure; hover for alternatives.")
    st.markdown(f'<div style="line-height:2">{plots.next_token_chips(choices)}</div>',
                unsafe_allow_html=True)
    st.dataframe(logprobs.logprob_table(choices), hide_index=True, height=300)


VIEWS: list[tuple[dict[str, str], Callable[[Answer, str], None]]] = [
    # one language per label, the answer's: seven bilingual labels did not fit in 1,400 px
    ({"ja": "トークン", "en": "Tokens"}, _view_tokens),
    ({"ja": "ベクトル", "en": "Vector"}, _view_vector),
    ({"ja": "類似度", "en": "Similarity"}, _view_similarity),
    ({"ja": "投影", "en": "Projection"}, _view_projection),
    ({"ja": "比較", "en": "Compare"}, _view_compare),
    ({"ja": "なぜこの出典？", "en": "Why this hit"}, _view_why),
    ({"ja": "次トークン", "en": "Next token"}, _view_next_token),
]
