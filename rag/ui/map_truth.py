"""The map's honesty panel: find a point, click it, compare its neighbours in both spaces.

Above the map, a box finds chunks by source or text and rings them on the map; below it, the share
of variance each PCA axis keeps, and for the clicked (or found) chunk its nearest neighbours in the
full vector space beside its nearest neighbours on the map. Numbers come from
`rag.lens.map_truth`; the map itself is drawn by `rag.ui.map_view.render_map`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from rag.lens import map_truth
from rag.ui.safe_text import literal_line

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rag.lens.collection import CollectionVectors
    from rag.lens.projection import MapData, MapPoint


def find_box(data: MapData, key: str) -> list[MapPoint]:
    """A search box over sources and texts; the matching drawn points."""
    text = st.text_input("点を探す（出典名や本文）/ find a point by source or text", key=f"{key}_find",
                         placeholder="例: hnsw, 04_jigen, コサイン")
    found = map_truth.find_points(data, text)
    if text.strip():
        st.caption(f"{len(found)} 件 / points found" + (" (first 50)" if len(found) == 50 else ""))
    return found


def mark_found(fig: go.Figure, data: MapData, found: list[MapPoint]) -> None:
    if not found:
        return
    import plotly.graph_objects as go

    three = data.dims == 3
    coords: dict[str, Any] = {"x": [p.x for p in found], "y": [p.y for p in found]}
    if three:
        coords["z"] = [p.z for p in found]
    fig.add_trace((go.Scatter3d if three else go.Scatter)(
        **coords, mode="markers", name="found", customdata=[p.id for p in found],
        marker={"size": 9 if three else 17, "color": "rgba(0,0,0,0)",
                "line": {"color": "#ff7f0e", "width": 3}},
        hovertext=[f"{p.source}" for p in found], hoverinfo="text",
    ))


def selected_id(event: Any) -> str | None:
    """The chunk id of the clicked point, from `st.plotly_chart`'s selection event."""
    try:
        points = event.selection.points
    except AttributeError:
        return None
    for point in points or []:
        cid = point.get("customdata")
        if isinstance(cid, list):
            cid = cid[0] if cid else None
        if cid and cid != "query":
            return str(cid)
    return None


def render_variance(vectors: CollectionVectors, data: MapData) -> None:
    if data.method != "pca":
        st.caption("t-SNE/UMAP の軸には意味がありません。近さだけを読んでください / t-SNE and UMAP axes "
                   "mean nothing; read only who sits near whom, and check it below.")
        return
    shares = map_truth.explained_variance(vectors, data.dims)
    if not shares:
        return
    parts = " · ".join(f"PC{i + 1} {s:.1%}" for i, s in enumerate(shares))
    st.caption(f"分散の保持率 / variance kept per axis: {parts} — 合計 / together {sum(shares):.1%}. "
               "残りは地図に写っていません：地図上で近くても、元の空間では遠いことがあります / the "
               "rest is not on the map, so points close here can be far apart in the full space.")


def _table(neighbours: list[map_truth.Neighbour]) -> dict[str, list]:
    return {
        "cosine": [round(n.cosine, 4) for n in neighbours],
        "map dist": [None if n.map_distance is None else round(n.map_distance, 3) for n in neighbours],
        "source": [n.source for n in neighbours],
        "text": [" ".join(n.text.split())[:120] for n in neighbours],
    }


def render_neighbours(vectors: CollectionVectors, data: MapData, chunk_id: str | None, key: str) -> None:
    if chunk_id is None:
        st.caption("地図の点をクリックすると、元の空間と地図上の近傍を比べられます / click a point "
                   "(2-D) to compare its neighbours in the full space with its neighbours on the map.")
        return
    near = map_truth.neighbourhood(vectors, data, chunk_id)
    if near is None:
        return
    st.markdown(f"**選んだ点 / chosen point**: {literal_line(near.point.source)}")
    st.text(" ".join(near.point.text.split())[:160])
    left, right = st.columns(2)
    with left:
        st.markdown("**元の空間の近傍 / nearest in the full vector space**")
        st.dataframe(_table(near.in_space), hide_index=True, key=f"{key}_nn_space")
    with right:
        st.markdown("**地図上の近傍 / nearest on the map**")
        st.dataframe(_table(near.on_map), hide_index=True, key=f"{key}_nn_map")
    k = len(near.in_space)
    st.markdown(f'<span class="rag-map-shared">共通 / shared: {near.shared} of {k}</span> — '
                "地図上の近さのうち、本当に近いのはこれだけです / that many of the map's neighbours are "
                "true neighbours.", unsafe_allow_html=True)
