"""The map view: method and dimension controls, the projection drawn, and its honesty panel.

Shared by the debug panel's Projection tab and the Explorer page. Numbers come from
`rag.lens.projection`, the figure from `rag.lens.plots`, the neighbour check from
`rag.ui.map_truth`.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import streamlit as st

from rag.lens import collection, plots, projection
from rag.ui import map_truth

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit
    from rag.ui.debug_panel import Context


def projection_controls(key: str) -> tuple[projection.Method, int, bool]:
    a, b, c = st.columns([3, 2, 2])
    method = a.segmented_control("手法 / method", list(projection.METHODS), default="pca",
                                 key=f"{key}_method") or "pca"
    dims = b.segmented_control("次元 / dims", [2, 3], default=2, key=f"{key}_dims") or 2
    colour = c.toggle("出典で色分け / colour by source", value=True, key=f"{key}_colour")
    return method, int(dims), colour


def fit_message(method: projection.Method, points: int) -> str:
    """What the spinner promises, as bench/projection.py measures it: a fit of 3,000 points takes
    1.5-2.5 s of one core (so about that on an idle machine, 3-5x longer on a busy one)."""
    name = "t-SNE" if method == "tsne" else "UMAP"
    seconds = max(1, round(2.5 * points / projection.MAX_POINTS))
    text = (f"{name} を {points} 点で計算中（空いたマシンで約 {seconds} 秒、混んでいるとその数倍）… / "
            f"fitting {name} on {points} points (about {seconds} s on an idle machine, a few times "
            "that on a busy one)…")
    if method == "umap" and not projection.umap_loaded():
        text += (" 起動後初めての UMAP は numba のコンパイル済みコードも読み込みます（数秒〜十数秒。"
                 "最初の 1 回だけはコンパイルに 1〜1.5 分、結果はデータディレクトリにキャッシュ）/ the first "
                 "UMAP since the app started also loads numba's compiled code (several seconds; the very first "
                 "time it compiles, 1-1.5 minutes, and caches the result in the data dir)")
    return text


def render_map(ctx: Context, *, key: str, method: projection.Method, dims: int, colour: bool,
               query: list[float] | None = None, query_text: str = "",
               hits: list[Hit] | tuple = (), title: str = "") -> None:
    if method == "umap" and not projection.umap_available():
        st.info(f"UMAP は追加パッケージが必要です / UMAP needs an optional package: "
                f"`{projection.UMAP_INSTALL}`. PCA を表示します / showing PCA.")
        method = "pca"
    slow = method != "pca"
    with st.spinner(fit_message(method, min(len(ctx.vectors), projection.MAX_POINTS))) if slow else nullcontext():
        data = projection.build_map(ctx.vectors, method=method, dims=dims, query=query,
                                 query_text=query_text, hits=hits)
    # the other maps of this collection are fitted in the background, so the next click is a switch
    projection.prefetch(ctx.vectors)
    found = map_truth.find_box(data, key)
    fig = plots.projection(data, title=title, colour_by_source=colour)
    map_truth.mark_found(fig, data, found)
    event = st.plotly_chart(fig, key=f"{key}_map", on_select="rerun", selection_mode="points")
    if data.dims == 3 and colour:
        _colour_key(plots.source_colours(data))
    sampled = f", {len(data.points)} of {data.total:,} drawn" if len(data.points) < data.total else ""
    if ctx.vectors.sampled:
        sampled += f" ({collection.sample_note(ctx.vectors)})"
    st.caption(
        f"{data.method.upper()} {data.dims}-D{sampled} · {data.seconds * 1000:.0f} ms"
        f"{' (cached)' if data.cached else ''}" + (f" · {data.note}" if data.note else "")
        + (" · t-SNE/UMAP: 距離やクラスタの大きさに意味はなく、近さだけが意味を持ちます / only "
           "'who sits together' is meaningful" if data.method != "pca" else
           " · PCA: 分散の大きい 2〜3 軸への射影 / the directions of largest variance")
    )
    map_truth.render_variance(ctx.vectors, data)
    chosen = map_truth.selected_id(event) or (found[0].id if len(found) == 1 else None)
    map_truth.render_neighbours(ctx.vectors, data, chosen, key)


def _colour_key(colours: dict[str, str]) -> None:
    """The 3-D map's sources and their colours (its chunks are one trace, so no legend lists them)."""
    import html

    items = " ".join(f'<span style="white-space:nowrap"><span style="color:{c}">●</span> '
                     f"{html.escape(s)}</span>" for s, c in colours.items())
    st.markdown(f'<div class="rag-colour-key" style="font-size:0.8em;line-height:1.6">{items}</div>',
                unsafe_allow_html=True)
