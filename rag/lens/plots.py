"""Plotly figures for the debug panel, the Explorer page and `rag map --out`.

Each builder takes the plain data from `rag.lens.vectors` and returns a `plotly.graph_objects.Figure`;
`standalone_html` writes one as a page that works offline (plotly.js embedded, not fetched from a
CDN). Layout and widgets are the UI's business (`rag.ui`), numbers are `rag.lens.vectors`'s.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rag.lens.logprobs import TokenChoice
    from rag.lens.projection import MapData, MapPoint
    from rag.lens.why import Why
    from rag.retrieve.hits import Hit

QUERY_COLOUR = "#d62728"
HIT_COLOUR = "#111111"
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
    "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
)
_WEBGL_ABOVE = 1500
"""2-D maps with more points than this draw with WebGL (Scattergl) to stay responsive."""


def _go():
    import plotly.graph_objects as go

    return go


def _compact(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def heat_strips(rows: Sequence[tuple[str, Sequence[float]]], *, title: str = "") -> go.Figure:
    """Every dimension of each vector as one coloured row, stacked so they compare by eye."""
    go = _go()
    labels = [label for label, _ in rows]
    width = max((len(v) for _, v in rows), default=0)
    z = np.full((len(rows), width), np.nan)
    for i, (_, v) in enumerate(rows):
        z[i, : len(v)] = np.asarray(v, dtype=np.float64)
    bound = float(np.nanmax(np.abs(z))) if z.size and not np.all(np.isnan(z)) else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, y=labels, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
        hovertemplate="%{y}<br>dim %{x}: %{z:.4f}<extra></extra>", colorbar={"thickness": 10},
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="dimension")
    fig.update_layout(title=title or None)
    return _compact(fig, 90 + 28 * len(rows))


def score_bars(hits: Sequence[Hit], *, values: Sequence[float] | None = None,
               axis_title: str = "cosine similarity") -> go.Figure:
    """The hits in rank order with the score that ranked them (cosine unless `values` are given),
    labelled by rank and source, so the bars always read in order."""
    go = _go()
    labels = [f"[{h.rank}] {h.source}" for h in hits]
    xs = [h.score for h in hits] if values is None else list(values)
    fig = go.Figure(go.Bar(
        x=xs, y=labels, orientation="h",
        text=[f"{x:.3f}" for x in xs], textposition="auto",
        hovertext=[f"cosine {h.score:.3f}<br>{_snippet(h.text)}" for h in hits], hoverinfo="text+x",
    ))
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    top = max([1.0, *xs]) if values is None else max([*xs, 1e-9]) * 1.05
    fig.update_xaxes(title_text=axis_title, range=[min(0.0, *xs), top])
    return _compact(fig, 80 + 32 * max(len(hits), 1))


def similarity_histogram(similarities: np.ndarray, hits: Sequence[Hit]) -> go.Figure:
    """Where the hits' scores fall among the query's similarity to every chunk."""
    go = _go()
    fig = go.Figure(go.Histogram(x=similarities, nbinsx=50, name="all chunks",
                                 marker_color="#9ecae1"))
    for i, hit in enumerate(sorted(hits, key=lambda h: h.score)):
        # labels inside the plot, staggered downwards, so neither each other nor the toolbar
        # (which sits over the top margin) hides them
        fig.add_vline(x=hit.score, line_color=QUERY_COLOUR, line_width=1.5)
        fig.add_annotation(x=hit.score, y=0.97 - 0.11 * (i % 4), yref="paper", text=f"[{hit.rank}]",
                           showarrow=False, xanchor="left", font={"size": 11, "color": QUERY_COLOUR},
                           bgcolor="rgba(255,255,255,0.75)")
    fig.update_xaxes(title_text="cosine similarity to the query")
    fig.update_yaxes(title_text="chunks")
    fig.update_layout(showlegend=False, bargap=0.02)
    fig = _compact(fig, 300)
    fig.update_layout(margin={"t": 40})
    return fig


def contributions(why: Why) -> go.Figure:
    """The dimensions whose products add most to (and take most from) the dot product."""
    go = _go()
    items = sorted(why.top_positive + why.top_negative, key=lambda t: t[1])
    fig = go.Figure(go.Bar(
        x=[v for _, v in items], y=[f"#{d}" for d, _ in items], orientation="h",
        marker_color=["#2ca02c" if v > 0 else "#d62728" for _, v in items],
        hovertemplate="%{y}: q·c = %{x:.5f}<extra></extra>",
    ))
    fig.update_yaxes(type="category", title_text="position in the vector")
    fig.update_xaxes(title_text="query[d] × chunk[d]")
    return _compact(fig, 120 + 14 * len(items))


def _snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _hover(p: MapPoint) -> str:
    head = f"<b>{html.escape(p.source)}</b>" + (f"  [hit {p.rank}]" if p.rank else "")
    body = "<br>".join(_wrap(html.escape(_snippet(p.text)), 60))
    return f"{head}<br>{body}"


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def source_colours(data: MapData) -> dict[str, str]:
    """Each drawn source's colour on the map (the same palette order every time)."""
    sources = sorted({p.source for p in data.points if p.kind != "query"})
    return {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(sources)}


def projection(data: MapData, *, title: str = "", colour_by_source: bool = True,
               legend_3d: bool = False) -> go.Figure:
    """The map: chunks coloured by source, hits ringed, the query a star joined to its hits.

    In 3-D the chunks are one trace (fast to redraw, the UI draws the colour key) unless
    `legend_3d` asks for a trace per source, as an offline page without that key needs."""
    go = _go()
    three = data.dims == 3
    chunks = [p for p in data.points if p.kind != "query"]
    colour = source_colours(data)
    scatter = go.Scatter3d if three else (go.Scattergl if len(chunks) > _WEBGL_ABOVE else go.Scatter)
    fig = go.Figure()
    one_trace = three and colour_by_source and not legend_3d
    if one_trace:
        # one WebGL object, not one per source: in Chromium 24 Scatter3d traces took 1-2.5 s to
        # draw and one 0.1-0.5 s (bench/map_switch.py); the colour key is drawn beside the figure
        fig.add_trace(scatter(
            **_xyz(chunks, three), mode="markers", name="chunks (colour = source)",
            marker={"size": 4, "color": [colour[p.source] for p in chunks], "opacity": 0.75},
            hovertext=[_hover(p) for p in chunks], hoverinfo="text", customdata=[p.id for p in chunks],
        ))
    groups = [] if one_trace else (sorted(colour) if colour_by_source else ["chunks"])
    for group in groups:
        pts = [p for p in chunks if not colour_by_source or p.source == group]
        fig.add_trace(scatter(
            **_xyz(pts, three), mode="markers", name=group, legendgroup=group,
            marker={"size": 4 if three else 7, "color": colour.get(group, "#1f77b4"),
                    "opacity": 0.75},
            hovertext=[_hover(p) for p in pts], hoverinfo="text",
            customdata=[p.id for p in pts],  # the chunk id a click on the point reports
        ))
    hits = sorted((p for p in chunks if p.kind == "hit"), key=lambda p: p.rank or 0)
    query = data.query
    if query is not None and hits:
        xs: list[float | None] = []
        ys: list[float | None] = []
        zs: list[float | None] = []
        for h in hits:
            xs += [query.x, h.x, None]
            ys += [query.y, h.y, None]
            zs += [query.z, h.z, None]
        line = {"x": xs, "y": ys, **({"z": zs} if three else {})}
        fig.add_trace((go.Scatter3d if three else go.Scatter)(
            **line, mode="lines", name="query → hits", hoverinfo="skip",
            line={"color": QUERY_COLOUR, "width": 2, **({} if three else {"dash": "dot"})},
        ))
    if hits:
        fig.add_trace((go.Scatter3d if three else go.Scatter)(
            **_xyz(hits, three), mode="markers+text", name="hits",
            text=[str(h.rank) for h in hits], textposition="top center",
            marker={"size": 7 if three else 13, "color": "rgba(0,0,0,0)",
                    "line": {"color": HIT_COLOUR, "width": 2}},
            hovertext=[_hover(h) for h in hits], hoverinfo="text", customdata=[h.id for h in hits],
        ))
    if query is not None:
        fig.add_trace((go.Scatter3d if three else go.Scatter)(
            **_xyz([query], three), mode="markers+text", name="query",
            text=["query"], textposition="bottom center",
            marker={"size": 8 if three else 18, "color": QUERY_COLOUR,
                    "symbol": "diamond" if three else "star"},
            hovertext=[f"<b>query</b><br>{html.escape(_snippet(query.text))}"], hoverinfo="text",
        ))
    shown = len(chunks)
    subtitle = f"{data.method.upper()} · {shown} of {data.total} chunks"
    fig.update_layout(
        # just above the plot, under the toolbar's row: at the top it sat under the toolbar on a phone
        title={"text": (title + " — " if title else "") + subtitle, "x": 0, "xanchor": "left",
               "xref": "paper", "y": 1, "yref": "paper", "yanchor": "bottom", "pad": {"b": 6},
               "font": {"size": 14}},
        # below the plot, wrapping: a side legend of 24 files took 3/4 of a phone's width
        legend={"itemsizing": "constant", "font": {"size": 10}, "orientation": "h",
                "x": 0, "xanchor": "left", "y": -0.04, "yanchor": "top"},
        hoverlabel={"align": "left"},
    )
    fig = _compact(fig, 620 if three else 540)
    fig.update_layout(margin={"t": 64})
    return fig


def _xyz(points: Sequence[MapPoint], three: bool) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {"x": [p.x for p in points], "y": [p.y for p in points]}
    if three:
        out["z"] = [p.z for p in points]
    return out


def next_token_chips(choices: Sequence[TokenChoice]) -> str:
    """The generated text as HTML chips shaded by probability; hover lists the alternatives."""
    chips = []
    for c in choices:
        alts = "\n".join(f"{t!r}: {p:.1%}" for t, p in c.alternatives)
        shade = int(255 - 155 * c.probability)
        chips.append(
            f'<span title="{html.escape(alts)}" style="background:rgb(255,{shade},{shade});'
            'border-radius:4px;padding:1px 2px;margin:1px;display:inline-block;'
            f'font-family:monospace">{html.escape(c.token).replace(" ", "&nbsp;")}</span>'
        )
    return "".join(chips)


def standalone_html(fig: go.Figure, *, title: str = "rag map") -> str:
    """A complete page with plotly.js inlined, so it opens offline from a file."""
    body = fig.to_html(include_plotlyjs=True, full_html=False, config={"responsive": True})
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
