"""The Explorer page: the whole collection as a map, any text placed on it, and Compare.

A person sees how the embedding model arranges their documents (PCA, t-SNE or UMAP, 2-D or 3-D,
coloured by source), types a query to see where it lands and which chunks are nearest, and
compares two texts. Numbers come from `rag.lens.vectors`; the widgets are shared with the debug panel.
"""

from __future__ import annotations

import streamlit as st

from rag.lens import plots, projection
from rag.ui import state
from rag.ui.debug_panel import context_for, render_compare
from rag.ui.map_view import projection_controls, render_map

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
    method, dims, colour = projection_controls(KEY)
    query = st.text_input("地図に置くテキスト / place a text on the map", key=f"{KEY}_query",
                          placeholder="例: コサイン類似度とは？ / e.g. what is cosine similarity?")
    query_vector, hits = None, []
    if query.strip():
        query_vector = searcher.embeddings.embed_query(query)
        hits = searcher.vector_hits(query_vector, state.settings().top_k)
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
                                                      colour_by_source=colour))

    st.download_button("この地図を HTML で保存 / download this map (offline HTML)", page,
                       file_name=f"rag-map-{method}-{dims}d.html", mime="text/html",
                       key=f"{KEY}_download", on_click="ignore")
    st.divider()
    st.subheader("比較 / Compare")
    render_compare(ctx, key=KEY)
