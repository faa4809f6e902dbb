"""The Explorer page: the whole collection as a map, any text placed on it, and Compare.

A person sees how the embedding model arranges their documents (PCA, t-SNE or UMAP, 2-D or 3-D,
coloured by source), types a query to see where it lands and which chunks are nearest, and
compares two texts. Numbers come from `rag.lens.vectors`; the widgets are shared with the debug panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from rag.lens import plots, projection
from rag.ui import state
from rag.ui.debug_panel import context_for, render_compare
from rag.ui.map_view import projection_controls, render_map

if TYPE_CHECKING:
    from rag.retrieve.hits import Hit
    from rag.retrieve.searcher import Searcher
    from rag.ui.debug_panel import Context

KEY = "explorer"


def render_explorer() -> None:
    st.title("🗺️ エクスプローラー / Explorer")
    searcher = state.get_searcher()
    if searcher.count() == 0:
        st.info("まだ文書がありません / nothing ingested yet: add files on the chat page's sidebar "
                "or run `rag ingest PATH`.")
        return
    ctx = context_for(searcher.info)
    st.caption(f"{ctx.info.provider} · {ctx.info.model} · {ctx.info.dims} dims · "
               f"{ctx.vectors.total} chunks · `{ctx.collection.name}`")
    _map_section(ctx, searcher)
    st.divider()
    st.subheader("比較 / Compare")
    render_compare(ctx, key=KEY)


@st.fragment
def _map_section(ctx: Context, searcher: Searcher) -> None:
    """The controls, the query box and the map: a fragment, so a method/dims click or a new query
    reruns this section only (not the page's Compare view), and the query is embedded once."""
    method, dims, colour = projection_controls(KEY)
    query = st.text_input("地図に置くテキスト / place a text on the map", key=f"{KEY}_query",
                          placeholder="例: コサイン類似度とは？ / e.g. what is cosine similarity?")
    query_vector, hits = _placed_query(searcher, ctx, query)
    render_map(ctx, key=KEY, method=method, dims=dims, colour=colour, query=query_vector,
               query_text=query, hits=hits, title=ctx.info.model)
    if hits:
        st.dataframe({
            "rank": [h.rank for h in hits], "cosine": [round(h.score, 4) for h in hits],
            "source": [h.source for h in hits],
            "text": [" ".join(h.text.split())[:200] for h in hits],
        }, hide_index=True)

    def page() -> str:
        data = projection.build_map(ctx.vectors, method=method, dims=dims, query=query_vector,
                                 query_text=query, hits=hits)
        return plots.standalone_html(plots.projection(data, title=ctx.info.model,
                                                      colour_by_source=colour, legend_3d=True))

    st.download_button("この地図を HTML で保存 / download this map (offline HTML)", page,
                       file_name=f"rag-map-{method}-{dims}d.html", mime="text/html",
                       key=f"{KEY}_download", on_click="ignore")


def _placed_query(searcher: Searcher, ctx: Context, query: str) -> tuple[list[float] | None, list[Hit]]:
    """The query's vector and hits, kept for the session while the text and collection stay the
    same: a map switch should not embed and search again."""
    if not query.strip():
        return None, []
    memo_key = f"{KEY}_placed"
    stamp = (query, ctx.vectors.key, state.settings().top_k)
    memo = st.session_state.get(memo_key)
    if memo is None or memo[0] != stamp:
        vector = searcher.embeddings.embed_query(query)
        memo = st.session_state[memo_key] = (stamp, vector, searcher.vector_hits(vector, state.settings().top_k))
    return memo[1], memo[2]
