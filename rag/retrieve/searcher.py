"""Search a collection: top-k with cosine similarity, optional MMR, threshold and source filter.

Queries go straight to the Chroma collection (one round trip that also returns the stored
vectors), because the UI shows every hit's vector and the distance Chroma returned. Every hit
carries its cosine similarity to the query whatever the mode, so scores mean the same thing
everywhere. Keyword and hybrid ranking live in `rag.retrieve.hybrid`; answering lives in `rag.answer.answerer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag import store
from rag.config import RetrievalModeName, Settings
from rag.embed.providers import EmbeddingInfo, get_embeddings, resolve
from rag.errors import EmptyStoreError, QueryError
from rag.retrieve.hits import Hit, SearchResult, vector_hits
from rag.retrieve.hybrid import hybrid_hits
from rag.retrieve.options import SearchOptions

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

T = TypeVar("T")


class Searcher:
    """Search over one embedding model's collection; cheap to keep for the life of a process.

    Before each question it reads the store's write version (one small read): when another
    process or machine wrote since the last question, it takes a fresh collection handle (an
    embedded store is reloaded from disk by `store.catch_up`), and BM25 refreshes on the same
    version, so vector, BM25 and hybrid answers all reflect the same writes.
    """

    def __init__(self, settings: Settings, info: EmbeddingInfo | None = None) -> None:
        self.settings = settings
        self.info = info or resolve(settings)
        self.embeddings = get_embeddings(settings, self.info)
        self.version = store.catch_up(settings, self.info.collection_name)
        self.collection = store.collection(settings, self.info)

    def sync(self) -> str:
        """Catch up with writes made since the last call; returns the write version in force."""
        version = store.catch_up(self.settings, self.info.collection_name)
        if version != self.version:
            self.collection = store.collection(self.settings, self.info)
            self.version = version
        return version

    def count(self) -> int:
        self.sync()
        return self._reopening(lambda: self.collection.count())

    def _reopening(self, fn: Callable[[], T]) -> T:
        """Run `fn`; if our collection was deleted meanwhile (`rag reset` from another process,
        then a new ingest), open the collection of that name again and retry once.

        A long-lived process such as the app keeps its Searcher; Chroma handles point at a
        collection's id, which a reset retires.
        """
        from chromadb.errors import NotFoundError

        try:
            return fn()
        except NotFoundError:
            self.collection = store.collection(self.settings, self.info)
            return fn()

    def search(
        self, query: str, options: SearchOptions | None = None, **changes: Any
    ) -> SearchResult:
        """The best `k` chunks for `query`, best first, with similarity scores and vectors.

        `changes` are `SearchOptions` fields (`k=3, mode="vector"`), applied over `options`.
        """
        opts = (options or SearchOptions()).with_(**changes)
        k = check_query(query, self.settings.top_k if opts.k is None else opts.k)
        mode = opts.mode or self.settings.retrieval_mode
        mmr, threshold, sources = opts.mmr, opts.threshold, opts.sources
        started = time.perf_counter()
        self.sync()
        query_vector = self.embeddings.embed_query(query)
        embedded = time.perf_counter()
        where = {"source": {"$in": list(sources)}} if sources else None
        hits = self._reopening(lambda: self._candidates(query, query_vector, k * 4 if mmr else k,
                                                        mode, where))
        if mmr:
            hits = _mmr(query_vector, hits, k)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        for rank, hit in enumerate(hits[:k], start=1):
            hit.rank = rank
        timings = {
            "embed_ms": (embedded - started) * 1000,
            "search_ms": (time.perf_counter() - embedded) * 1000,
        }
        return SearchResult(query, query_vector, hits[:k], mode, self.info, timings)

    def _candidates(
        self, query: str, query_vector: list[float], n: int, mode: RetrievalModeName,
        where: dict[str, Any] | None,
    ) -> list[Hit]:
        if mode == "vector":
            hits = self.vector_hits(query_vector, n, where)
        else:
            hits = hybrid_hits(self.settings, self.collection, query, query_vector, n, mode,
                               where, self.info)
        if not hits:
            # count() scans the collection (about 5 ms at 100k chunks, as long as the query
            # itself), so it is asked only to explain an empty result.
            self._require_chunks()
        return hits

    def _require_chunks(self) -> None:
        if self.collection.count() == 0:
            raise EmptyStoreError(f"The collection {self.info.collection_name} is empty.", EmptyStoreError.default_fix)

    def vector_hits(
        self, query_vector: list[float], n: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest chunks by cosine distance, straight from Chroma's HNSW index."""
        return vector_hits(self.collection, query_vector, n, where)

    def as_langchain_retriever(self, **search_kwargs: Any) -> BaseRetriever:
        """This searcher as a LangChain `BaseRetriever`, to compose into chains."""
        from rag.retrieve.langchain import SearcherRetriever

        return SearcherRetriever(searcher=self, search_kwargs=search_kwargs)


MAX_K = 100


def check_query(query: str, k: int) -> int:
    """`k` when the query and k can be searched; a `QueryError` naming the fix otherwise."""
    from rag.visible import has_visible_text

    if not has_visible_text(query):
        raise QueryError("The question is empty (no visible characters).", "Type a question.")
    if not 1 <= k <= MAX_K:
        raise QueryError(f"k must be between 1 and {MAX_K} (got {k}).",
                         "Pass -k 5 (or any k in range), or set RAG_TOP_K.")
    return k


def _mmr(query_vector: list[float], hits: list[Hit], k: int) -> list[Hit]:
    """Maximal marginal relevance over the candidates: relevant but not repetitive."""
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    with_vectors = [h for h in hits if h.vector is not None]
    if len(with_vectors) <= k:
        return with_vectors
    order = maximal_marginal_relevance(
        np.asarray(query_vector), [h.vector for h in with_vectors], lambda_mult=0.5, k=k
    )
    return [with_vectors[i] for i in order]
