"""Plotly figures for the Next-token page: candidate bars, the word map and the cosine grid.

Builders take plain data from `rag.lens.nexttoken` and `rag.lens.wordvectors` and return a
`plotly.graph_objects.Figure`; the page (`rag.ui.nexttoken`) lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rag.lens.nexttoken import Candidate

JA_COLOUR, EN_COLOUR = "#d62728", "#1f77b4"


def shown(text: str) -> str:
    """A token's text made visible: spaces as ␣, line breaks as ↵, nothing as ∅."""
    return text.replace(" ", "␣").replace("\n", "↵") or "∅"


def candidate_bars(candidates: Sequence[Candidate], *, title: str = "") -> go.Figure:
    """The top candidates as horizontal bars, most likely on top, with their probabilities."""
    import plotly.graph_objects as go

    labels = [f"{c.rank}. {shown(c.text)}" for c in candidates]
    probs = [c.prob for c in candidates]
    fig = go.Figure(go.Bar(
        x=probs, y=labels, orientation="h", marker_color="#4c78a8",
        text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
        customdata=[[c.id, c.logprob] for c in candidates],
        hovertemplate="%{y}<br>id %{customdata[0]}<br>p %{x:.4f}<br>log p %{customdata[1]:.3f}"
                      "<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    top = max(probs, default=1.0)
    fig.update_xaxes(range=[0, min(1.0, top * 1.25) or 1.0], tickformat=".0%", title_text="probability")
    fig.update_layout(title=title or None, height=60 + 24 * len(candidates),
                      margin={"l": 10, "r": 30, "t": 30 if title else 10, "b": 10})
    return fig


def _is_ja(word: str) -> bool:
    return any(ord(ch) > 0x2E7F for ch in word)


def word_map(words: Sequence[str], coords: np.ndarray, *, title: str = "") -> go.Figure:
    """Words placed by their projected vectors, labelled, Japanese red and Latin script blue."""
    import plotly.graph_objects as go

    colours = [JA_COLOUR if _is_ja(w) else EN_COLOUR for w in words]
    three = coords.shape[1] == 3
    common = {"text": list(words), "mode": "markers+text", "textposition": "top center",
              "marker": {"size": 7 if three else 10, "color": colours},
              "hovertemplate": "%{text}<extra></extra>"}
    if three:
        trace = go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **common)
    else:
        trace = go.Scatter(x=coords[:, 0], y=coords[:, 1], cliponaxis=False, **common)
    fig = go.Figure(trace)
    fig.update_layout(title=title or None, height=520, showlegend=False,
                      margin={"l": 20, "r": 20, "t": 50, "b": 10})
    return fig


def cosine_grid(words: Sequence[str], sims: np.ndarray) -> go.Figure:
    """Every pair's cosine similarity as a coloured, numbered grid."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(
        z=sims, x=list(words), y=list(words), colorscale="RdBu_r", zmid=0, zmin=-1, zmax=1,
        text=[[f"{v:.2f}" for v in row] for row in sims], texttemplate="%{text}",
        textfont={"size": 9}, hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    size = 120 + 26 * len(words)
    fig.update_layout(height=size, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig
