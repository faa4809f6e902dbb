"""The Next-token page: a real language model's next-token odds and word vectors, offline.

Two tabs. *Next token*: type a text (default 「我輩は猫である。名前はまだ」), see its tokens with
IDs, the 20 most likely next tokens as bars, a temperature slider that reshapes them, a sample
button that draws one at random (so a person sees why the same prompt gives different answers),
and a button per candidate that appends it and steps on. *Word vectors*: the model's input
embedding rows for a list of words, their cosine similarities, a PCA/t-SNE map, and one token's
ID in binary beside its 640 learned numbers. Numbers come from `rag.lens.nexttoken` and
`rag.lens.wordvectors`; this module lays them out and keeps the page's state.
"""

from __future__ import annotations

import html
from contextlib import nullcontext

import numpy as np
import streamlit as st

from rag.errors import RagError
from rag.lens import lm_plots, plots, wordvectors
from rag.lens.nexttoken import SEED_TEXT, NextTokenModel
from rag.lens.projection import project
from rag.ui import state

KEY = "nt"
TOP = 20
_CHIP = ("display:inline-block;margin:2px;padding:2px 5px;border-radius:6px;border:1px solid #ccc;"
         "background:#f6f8fa;text-align:center;vertical-align:top;font-family:monospace;"
         "line-height:1.25")
_ID = "display:block;font-size:0.7em;color:#888"
_BIT = ("display:inline-block;width:1.3em;margin:1px;text-align:center;font-family:monospace;"
        "border-radius:3px;")


def render_next_token_page() -> None:
    st.title("🔮 次トークン / Next token")
    st.caption(
        "言語モデルは次に来るトークンの確率分布から 1 つを選んで文章を続けます。いつも最も確率の高いものを"
        "選ぶとは限らないので、同じ入力でも答えが変わります。 / A language model continues a text by "
        "choosing the next token from a probability distribution — not always the most likely one, "
        "which is why the same prompt can give different answers. Model: Gemma 3 270M (base model, "
        "Q4_K_M), running offline in numpy."
    )
    model = state.get_next_token_model()
    tabs = st.tabs(["次トークン / Next token", "単語ベクトル / Word vectors"], key=f"{KEY}_tab",
                   on_change="rerun")
    for tab, view in zip(tabs, (_render_next, _render_word_vectors), strict=True):
        if tab.open:
            with tab:
                try:
                    view(model)
                except RagError as exc:
                    st.error(str(exc))


# --- next token ------------------------------------------------------------------------------------


def _chips(model: NextTokenModel, ids: list[int]) -> str:
    chips = "".join(
        f'<span style="{_CHIP}">{html.escape(lm_plots.shown(t.text))}<span style="{_ID}">{t.id}'
        "</span></span>" for t in model.tokens(ids))
    return f'<div style="line-height:2.4">{chips or "∅"}</div>'


def _set_ids(model: NextTokenModel, ids: list[int]) -> None:
    """Make `ids` the current tokens; the text box shows their text and is not re-tokenized."""
    text = model.decode(ids)
    st.session_state[f"{KEY}_ids"] = ids
    st.session_state[f"{KEY}_text"] = text
    st.session_state[f"{KEY}_source"] = text


def _append(model: NextTokenModel, token_id: int, how: str) -> None:
    _set_ids(model, [*st.session_state[f"{KEY}_ids"], token_id])
    st.session_state[f"{KEY}_last"] = how


def _sample(model: NextTokenModel, temperature: float) -> None:
    dist = model.distribution(st.session_state[f"{KEY}_ids"], top=TOP, temperature=temperature)
    rng = st.session_state.setdefault(f"{KEY}_rng", np.random.default_rng())
    drawn = model.sample(dist, rng)
    _append(model, drawn.id, f"🎲 「{lm_plots.shown(drawn.text)}」 — {drawn.rank} 位 / rank "
                             f"{drawn.rank}, p = {drawn.prob:.2%} (T = {temperature:g})")


def _undo(model: NextTokenModel) -> None:
    _set_ids(model, st.session_state[f"{KEY}_ids"][:-1])
    st.session_state[f"{KEY}_last"] = ""


def _reset(model: NextTokenModel) -> None:
    _set_ids(model, model.encode(SEED_TEXT))
    st.session_state[f"{KEY}_last"] = ""


def _current_ids(model: NextTokenModel) -> list[int]:
    ss = st.session_state
    if f"{KEY}_ids" not in ss:
        _reset(model)
    text = st.text_area("テキスト / text", key=f"{KEY}_text", height=90,
                        help="続きを予測したい文章 / the text whose continuation you want to see")
    if text != ss[f"{KEY}_source"]:  # typed by the person: read it afresh
        ss[f"{KEY}_ids"] = model.encode(text)
        ss[f"{KEY}_source"] = text
        ss[f"{KEY}_last"] = ""
    return ss[f"{KEY}_ids"]


def _render_next(model: NextTokenModel) -> None:
    ids = _current_ids(model)
    st.markdown(f"**トークン / tokens** ({len(ids)}) — 先頭に BOS (id {model.config.bos_id}) が付きます "
                "/ the model reads a BOS token first")
    st.markdown(_chips(model, ids), unsafe_allow_html=True)
    temperature = st.slider(
        "温度 / temperature", 0.0, 2.0, 1.0, 0.05, key=f"{KEY}_temperature",
        help="softmax(logits / T): T < 1 で確率の高い候補に集中、T > 1 で平らに、T = 0 は常に 1 位 / "
             "T < 1 sharpens, T > 1 flattens, T = 0 always picks the top token")
    dist = model.distribution(ids, top=TOP, temperature=temperature)
    a, b, c = st.columns(3)
    a.metric("1 位 / top token", lm_plots.shown(dist.candidates[0].text),
             f"{dist.candidates[0].prob:.1%}", delta_color="off", delta_arrow="off",
             delta_description="の確率 / its probability")  # a probability, not a rise: no ↑
    b.metric("エントロピー / entropy", f"{dist.entropy_bits:.2f} bits")
    c.metric("上位 20 の合計 / top-20 mass", f"{sum(x.prob for x in dist.candidates):.1%}")
    st.plotly_chart(lm_plots.candidate_bars(dist.candidates), key=f"{KEY}_bars",
                    config={"displayModeBar": False})
    st.caption(f"{model.name} · 計算 / computed in {dist.seconds:.2f} s · 読み込み / model loaded in "
               f"{model.load_seconds:.1f} s · 26 万語彙のうち上位 {TOP} / the top {TOP} of "
               f"{model.config.vocab_size:,} tokens")
    left, mid, right = st.columns(3)
    left.button("🎲 サンプル / sample", key=f"{KEY}_sample", on_click=_sample,
                args=(model, temperature), type="primary",
                help="この温度の分布から 1 つ引いて追加 / draw one token at this temperature and append it")
    mid.button("↩ 1 つ戻す / undo", key=f"{KEY}_undo", on_click=_undo, args=(model,),
               disabled=not ids)
    right.button("⟲ 最初から / reset", key=f"{KEY}_reset", on_click=_reset, args=(model,))
    if st.session_state.get(f"{KEY}_last"):
        st.info(f"追加 / appended: {st.session_state[f'{KEY}_last']}")
    st.markdown("**クリックで追加 / click a token to append it and step on**")
    cols = st.columns(4)
    for i, cand in enumerate(dist.candidates):
        cols[i % 4].button(
            f"{lm_plots.shown(cand.text)} · {cand.prob:.1%}", key=f"{KEY}_pick_{cand.rank}",
            on_click=_append, args=(model, cand.id, f"「{lm_plots.shown(cand.text)}」 — "
                                    f"{cand.rank} 位 / rank {cand.rank}, p = {cand.prob:.2%}"),
            width="stretch")
    st.caption("チャットモデル自身の候補（OpenAI キーか互換サーバーがあるとき）は、回答の "
               "🔍 パネルの「次トークン」タブにあります / the chat model's own alternatives (with an "
               "OpenAI key or server) are in the 🔍 panel under each answer.")


# --- word vectors ----------------------------------------------------------------------------------


def _bits_html(bits: str) -> str:
    return "".join(
        f'<span style="{_BIT}background:{"#333;color:#fff" if b == "1" else "#eee;color:#333"}">{b}</span>'
        for b in bits)


def _render_word_vectors(model: NextTokenModel) -> None:
    st.caption(
        "トークン ID はただの行番号です。モデルは最初にその行の 640 個の学習済みの数値（埋め込み）を取り出し、"
        "似た使われ方の語は近い向きになります。 / A token ID is only a row number; the model's first "
        "step fetches that row's 640 learned numbers (its embedding), and words used alike point "
        "in similar directions — as in the Embedding Projector.")
    raw = st.text_area("単語 / words (「,」「、」か改行で区切る / comma or line separated)",
                       ", ".join(wordvectors.DEFAULT_WORDS), key=f"{KEY}_words", height=80)
    words = wordvectors.parse_words(raw)
    if not words:
        st.info("単語を入力してください / type some words")
        return
    a, b = st.columns(2)
    method = a.segmented_control("手法 / method", ["pca", "tsne"], default="pca",
                                 key=f"{KEY}_method") or "pca"
    dims = int(b.segmented_control("次元 / dims", [2, 3], default=2, key=f"{KEY}_dims") or 2)
    vecs = wordvectors.word_vectors(model, words)
    matrix = np.stack([v.vector for v in vecs])
    with st.spinner("t-SNE を計算中… / fitting t-SNE…") if method == "tsne" else nullcontext():
        coords = project(matrix, method, dims)
    st.plotly_chart(lm_plots.word_map(words, coords, title=f"{method.upper()} {dims}-D"),
                    key=f"{KEY}_map")
    st.caption("PCA: 分散の大きい軸への射影 / the directions of largest variance. t-SNE: 近さだけが"
               "意味を持つ / only who sits together is meaningful. 赤 = 日本語, 青 = 英語 / red Japanese, "
               "blue Latin script.")
    st.markdown("**コサイン類似度 / cosine similarity**")
    st.plotly_chart(lm_plots.cosine_grid(words, wordvectors.cosine_matrix(matrix)),
                    key=f"{KEY}_cosine")
    st.markdown("**ID と ベクトル / an ID and its vector**")
    word = st.selectbox("単語 / word", words, key=f"{KEY}_chosen")
    chosen = vecs[words.index(word)] if word in words else vecs[0]
    width = len(wordvectors.id_bits(0, model.config.vocab_size))
    for tok in chosen.tokens:
        bits = wordvectors.id_bits(tok.id, model.config.vocab_size)
        st.markdown(f'<code>{html.escape(tok.piece)}</code> ID {tok.id} = {_bits_html(bits)}',
                    unsafe_allow_html=True)
    rows = [(f"{t.piece} ({t.id})", model.weights["token_embd.weight"][t.id]) for t in chosen.tokens]
    if len(rows) > 1:
        rows.append((f"{chosen.word} (mean)", chosen.vector))
    st.plotly_chart(plots.heat_strips(rows, title=f"{model.config.dim} 個の学習済みの数値 / learned numbers"),
                    key=f"{KEY}_strip")
    st.caption(f"ID は {width} 桁の 2 進数（{model.config.vocab_size:,} 語彙）で、数の大小に意味はありません。"
               f"ベクトルは {model.config.dim} 個の実数で、向きが意味を表します。 / The ID is {width} binary "
               f"digits ({model.config.vocab_size:,} tokens) and its size means nothing; the vector is "
               f"{model.config.dim} learned numbers whose direction carries the meaning. {chosen.note}.")
    near = wordvectors.nearest_tokens(model, chosen.vector, 10, exclude=chosen.ids)
    st.markdown(f"**「{chosen.word}」に最も近いトークン / nearest tokens in the whole vocabulary**")
    st.dataframe({"token": [t.piece for t, _ in near], "id": [t.id for t, _ in near],
                  "cosine": [round(s, 4) for _, s in near]}, hide_index=True)
