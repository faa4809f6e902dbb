"""What `rag embed --json` prints: the tokens OpenAI's models read and the vector we store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.lens.vectors import summarize
from rag.tokens import ENCODING_NAME, tokenize

if TYPE_CHECKING:
    from rag.config import Settings


def embed_report(text: str, settings: Settings) -> dict[str, Any]:
    """What `rag embed --json` prints: the tokens OpenAI's models read and the vector we store."""
    from rag.embed.providers import get_embeddings, resolve

    info = resolve(settings)
    vector = get_embeddings(settings, info).embed_query(text)
    tokens = tokenize(text)
    return {
        "text": text,
        "encoding": ENCODING_NAME,
        "tokens": [{"id": t.id, "text": t.text} for t in tokens],
        "token_ids": [t.id for t in tokens],
        "embedding": info.as_dict(),
        "vector": [float(x) for x in vector],
        "norm": summarize(vector).norm,
    }
