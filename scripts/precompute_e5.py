"""Write rag/data/e5-docs_corpus.npz: e5's vectors of every chunk of docs_corpus/ (see
rag/embed/bundled.py). Run after editing docs_corpus/ or the chunker; takes a minute or two.

    .venv/bin/python scripts/precompute_e5.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from rag.config import Settings
    from rag.embed.bundled import BUNDLE, engine_id
    from rag.embed.cache import key_of
    from rag.embed.e5 import E5Embeddings
    from rag.ingest.chunking import split_documents
    from rag.ingest.loaders import FoundFile, discover, load

    settings = Settings()
    texts: list[str] = []
    for item in discover([ROOT / "docs_corpus"]):
        if isinstance(item, FoundFile):
            docs = load(item, item.path.read_bytes())
            texts += [c.page_content for c in split_documents(docs, settings.chunk_size, settings.chunk_overlap)]
    texts = list(dict.fromkeys(texts))
    started = time.perf_counter()
    vectors = np.asarray(E5Embeddings().embed_documents(texts), dtype=np.float32)
    seconds = time.perf_counter() - started
    keys = np.array([np.frombuffer(key_of(t), dtype=np.uint8) for t in texts])
    BUNDLE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(BUNDLE, keys=keys, vectors=vectors, engine=np.array(engine_id()))
    print(f"{len(texts)} chunks embedded in {seconds:.1f} s ({len(texts) / seconds:.1f}/s) -> {BUNDLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
