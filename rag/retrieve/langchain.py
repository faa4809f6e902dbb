"""A `Searcher` behind LangChain's `BaseRetriever`, so it composes into LangChain chains.

Kept apart from `rag.retrieve.searcher` because importing `langchain_core.retrievers` pulls in the tracing
stack (about a quarter of a second) that the CLI and the app's hot path never need.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever


class SearcherRetriever(BaseRetriever):
    """Documents carry the hit's `score` (cosine similarity) and `rank` in their metadata."""

    searcher: Any
    search_kwargs: dict[str, Any] = {}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [h.to_document() for h in self.searcher.search(query, **self.search_kwargs).hits]
