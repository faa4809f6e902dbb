"""How to search, as one value: what the CLI's flags, the sidebar's controls and `rag ask` share.

Spelled once here, so a new option (a filter, a mode) reaches the searcher, the answerer, the CLI
and the app by being added in one place. `None` means "the setting in force".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rag.config import RetrievalModeName


@dataclass(frozen=True)
class SearchOptions:
    k: int | None = None
    """Chunks to return; None: `RAG_TOP_K`."""
    mode: RetrievalModeName | None = None
    """vector, bm25 or hybrid; None: `RAG_RETRIEVAL_MODE`."""
    mmr: bool = False
    """Diversify the results (maximal marginal relevance)."""
    threshold: float | None = None
    """Drop hits whose cosine similarity is below this."""
    sources: tuple[str, ...] | None = None
    """Only chunks of these sources."""

    def with_(self, **changes: Any) -> SearchOptions:
        """A copy with the given fields changed; `sources` may be any iterable (or None)."""
        if changes.get("sources") is not None:
            changes["sources"] = tuple(changes["sources"]) or None
        return replace(self, **changes)
