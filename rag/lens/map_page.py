"""The collection's map from settings alone, as data and as a page that opens offline (`rag map`).

The Explorer and the debug panel project vectors they already hold; a caller that starts from
settings (the CLI) needs the collection opened, its vectors loaded and the query placed first, and
that sequence lives here rather than in a front end.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.config import Settings
from rag.lens.projection import MAX_POINTS, MapData, Method


@dataclass(frozen=True)
class CollectionMap:
    data: MapData
    model: str
    """The embedding model whose space is drawn (named in the title: maps of two models differ)."""
    query: str = ""

    @property
    def title(self) -> str:
        return f"rag map — {self.model}" + (f" — {self.query}" if self.query else "")

    def html(self) -> str:
        """A complete page with plotly.js inlined."""
        from rag.lens import plots

        return plots.standalone_html(plots.projection(self.data, title=self.title, legend_3d=True), title=self.title)


def collection_map(settings: Settings, *, method: Method = "pca", dims: int = 2, query: str = "",
                   k: int | None = None, max_points: int = MAX_POINTS) -> CollectionMap:
    """The active collection projected; with a query, the query and its `k` nearest chunks marked."""
    from rag.lens import collection, projection
    from rag.retrieve.searcher import Searcher

    searcher = Searcher(settings)
    vectors = collection.vectors_for(settings, searcher.info, searcher.collection)
    query_vector, hits = None, []
    if query:
        result = searcher.search(query, k=k, mode="vector")
        query_vector, hits = result.query_vector, result.hits
    data = projection.build_map(vectors, method=method, dims=dims, query=query_vector,
                                query_text=query, hits=hits, max_points=max_points)
    return CollectionMap(data, searcher.info.model, query)
