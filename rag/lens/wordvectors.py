"""Word vectors as the Embedding Projector shows them: the language model's input embedding rows.

A token ID is just a row number (Gemma's 262,144 IDs need 18 bits); the model's first step looks
that row up in a learned table of 640 numbers, and training has put words used alike near each
other there. This module picks those rows for a list of words, compares them (cosine), finds a
word's nearest tokens in the whole vocabulary, and places the words on a 2-D/3-D map (PCA or
t-SNE, shared with the collection maps in `rag.lens.projection`).

What it leaves out: contextual vectors (what a word means in a sentence is the business of the
later layers); a word of several tokens is shown as the mean of their rows, and says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.errors import InputError
from rag.lens.nexttoken import NextTokenModel, Token

DEFAULT_WORDS = (
    "猫", "犬", "我輩", "拙者", "美しい", "綺麗", "愛", "東京", "京都", "寿司",
    "beautiful", "beauty", "love", "cat", "dog", "king", "queen", "Tokyo", "sushi",
)
MAX_WORDS = 200
_LATIN = re.compile(r"[A-Za-z]")
_EMBEDDING = "token_embd.weight"


@dataclass
class WordVector:
    """One word's vector: the embedding row of its token, or the mean of its tokens' rows."""

    word: str
    tokens: list[Token]
    vector: np.ndarray

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]

    @property
    def note(self) -> str:
        n = len(self.tokens)
        return "1 token" if n == 1 else f"mean of {n} tokens"


def parse_words(text: str) -> list[str]:
    """Words from a comma-, 、- or line-separated list, blanks dropped, order and repeats kept once."""
    words = [w.strip() for w in re.split(r"[,、\n]+", text)]
    seen: dict[str, None] = {}
    for w in words:
        if w:
            seen.setdefault(w, None)
    if len(seen) > MAX_WORDS:
        raise InputError(f"{len(seen)} words given; the map takes at most {MAX_WORDS}.",
                         "Remove some words.")
    return list(seen)


def word_vector(model: NextTokenModel, word: str, *, space_before_latin: bool = True) -> WordVector:
    """The embedding row(s) of `word`.

    An English word inside a sentence is read with the space before it (`▁cat`, a different row
    from `cat` at the start of a text), so Latin-script words get that space unless told not to;
    Japanese has no spaces between words and is taken as written.
    """
    if not word.strip():
        raise InputError("An empty word has no vector.", "Type at least one character.")
    text = " " + word if space_before_latin and _LATIN.match(word) else word
    ids = model.encode(text)
    if len(ids) > 1 and ids[0] == model.encode(" ")[0] and text != word:
        ids = model.encode(word)  # no "▁word" piece in the vocabulary: the bare word reads better
    table = model.weights[_EMBEDDING]
    vector = np.asarray(table[ids], dtype=np.float32).mean(axis=0)
    return WordVector(word, model.tokens(ids), vector)


def word_vectors(model: NextTokenModel, words: Sequence[str], **options: bool) -> list[WordVector]:
    return [word_vector(model, w, **options) for w in words]


def cosine_matrix(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise cosine similarity: 1 = same direction, 0 = unrelated, −1 = opposite."""
    m = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    unit = m / np.where(norms == 0, 1.0, norms)
    return unit @ unit.T


def nearest_tokens(model: NextTokenModel, vector: np.ndarray, k: int = 10,
                   exclude: Sequence[int] = ()) -> list[tuple[Token, float]]:
    """The `k` vocabulary entries whose embedding rows point most nearly the same way."""
    table = model.weights[_EMBEDDING]
    norms = model.embedding_norms()
    v = np.asarray(vector, dtype=np.float32)
    sims = (table @ v) / (norms * max(float(np.linalg.norm(v)), 1e-12))
    sims[list(exclude)] = -np.inf
    best = np.argpartition(-sims, k)[:k]
    best = best[np.argsort(-sims[best])]
    return [(model.token(int(i)), float(sims[i])) for i in best]


def id_bits(token_id: int, vocab_size: int) -> str:
    """The ID in binary, as wide as the largest ID needs: 262,144 IDs -> 18 digits."""
    width = max(1, math.ceil(math.log2(vocab_size)))
    return format(token_id, f"0{width}b")
