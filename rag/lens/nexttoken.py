"""Next-token probabilities from a real language model, offline: what an LLM chooses between.

`NextTokenModel` wraps Gemma 3 270M (`rag.lens.gemma` does the arithmetic, `rag.lens.gemma_files`
the files) and answers the explainer's questions: which tokens does a text become, which tokens
could come next and how likely is each, how does temperature reshape that, what does one random
draw pick, and how surprised is the model by each token of a given text (log-probabilities and
perplexity). The app's Next-token page and `rag next` are its front ends.

What it leaves out: generation loops and chat formatting (Gemma 3 270M is a base model: it
continues text, it does not answer questions).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import InputError
from rag.lens import gemma, gemma_files

log = logging.getLogger(__name__)

MAX_TOKENS = 1024
"""Longer texts are refused: the whole text is recomputed per step (no KV cache), and the
score of T tokens needs T x 262,144 logits."""
GREEDY_BELOW = 1e-3
"""Temperatures below this mean "always the most likely token" (dividing by ~0 overflows)."""
SEED_TEXT = "我輩は猫である。名前はまだ"
_LOGITS_CACHE = 32
_SCORE_ROWS = 64


@dataclass(frozen=True)
class Token:
    """One token of a text: its ID, its vocabulary piece (`▁` is a space) and its text."""

    id: int
    piece: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One possible next token with its probability at the temperature asked for."""

    rank: int
    id: int
    piece: str
    text: str
    prob: float
    logprob: float
    logit: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Distribution:
    """The model's view of what comes after `tokens`: the top candidates, and how spread out it is."""

    tokens: list[Token]
    temperature: float
    candidates: list[Candidate]
    entropy_bits: float
    seconds: float
    probs: np.ndarray = field(repr=False)
    """The whole distribution over the vocabulary (sums to 1), for sampling."""
    logits: np.ndarray = field(repr=False)
    _cdf: np.ndarray | None = field(default=None, repr=False)

    @property
    def cdf(self) -> np.ndarray:
        """Running totals of `probs`, computed once: a draw is then one binary search."""
        if self._cdf is None:
            self._cdf = np.cumsum(self.probs)
        return self._cdf

    def as_dict(self) -> dict[str, Any]:
        return {"tokens": [t.as_dict() for t in self.tokens], "temperature": self.temperature,
                "entropy_bits": round(self.entropy_bits, 4), "seconds": round(self.seconds, 3),
                "next": [c.as_dict() for c in self.candidates]}


@dataclass(frozen=True)
class ScoredToken:
    """A token of a text with the probability the model gave it, knowing only the text before it."""

    id: int
    piece: str
    text: str
    logprob: float
    prob: float
    rank: int
    """1 when it was the model's first choice."""
    top: str
    """The model's first choice at this position."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Score:
    tokens: list[ScoredToken]
    mean_logprob: float
    perplexity: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"tokens": [t.as_dict() for t in self.tokens], "count": len(self.tokens),
                "mean_logprob": round(self.mean_logprob, 4), "perplexity": round(self.perplexity, 4),
                "seconds": round(self.seconds, 3)}


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T): T < 1 sharpens the distribution, T > 1 flattens it, T -> 0 is argmax."""
    if temperature < 0:
        raise InputError(f"Temperature must be 0 or more, not {temperature}.",
                         "Use 0 for always the top token, 1 for the model's own odds, up to 2.")
    z = logits.astype(np.float64)
    if temperature < GREEDY_BELOW:
        out = np.zeros_like(z)
        out[int(np.argmax(z))] = 1.0
        return out
    return gemma.softmax(z / temperature)


def _blas_one_thread() -> AbstractContextManager[Any]:
    """Small matrix products run fastest on one BLAS thread, and much faster when the cores are
    busy (measured here, 10 tokens under load: 0.5 s on one thread against 2.8 s on two)."""
    try:
        return _controller().limit(limits=1, user_api="blas")
    except ImportError:
        return nullcontext()


@lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class NextTokenModel:
    """Gemma 3 270M with its own tokenizer; thread-safe, logits cached per token sequence."""

    name = gemma_files.MODEL_NAME

    def __init__(self, files: gemma_files.Files, load_seconds: float = 0.0) -> None:
        self.files, self.config, self.weights = files, files.config, files.weights
        self.load_seconds = load_seconds
        """How long reading (and, the first time, converting) the files took."""
        self.tokenizer = files.tokenizer
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self._norms: np.ndarray | None = None

    # --- tokens -------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """The text's token IDs as the model reads them (without the BOS token it is given first)."""
        return list(self.tokenizer.encode(text))

    def token(self, token_id: int) -> Token:
        if not 0 <= token_id < self.config.vocab_size:
            raise InputError(f"Token ID {token_id} is outside the vocabulary.",
                             f"Use an ID from 0 to {self.config.vocab_size - 1}.")
        return Token(token_id, self.tokenizer.id_to_piece(token_id), self.decode([token_id]))

    def tokens(self, ids: Sequence[int]) -> list[Token]:
        return [self.token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of the IDs; a lone byte token of a split character shows as U+FFFD (�)."""
        return self.tokenizer.decode([int(i) for i in ids])

    def embedding_norms(self) -> np.ndarray:
        """Length of every embedding row, computed once (reads the whole 670 MB table)."""
        if self._norms is None:
            table = self.weights["token_embd.weight"]
            norms = np.sqrt(np.einsum("ij,ij->i", table, table))
            norms[norms == 0] = 1.0
            self._norms = norms
        return self._norms

    # --- the distribution ---------------------------------------------------------------------

    def _ids(self, text_or_ids: str | Sequence[int]) -> list[int]:
        ids = self.encode(text_or_ids) if isinstance(text_or_ids, str) else [int(i) for i in text_or_ids]
        if len(ids) >= MAX_TOKENS:
            raise InputError(f"The text is {len(ids)} tokens long; the next-token view takes at "
                             f"most {MAX_TOKENS - 1}.", "Shorten it.")
        return ids

    def next_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Scores for the token after `ids` (BOS is put first here), cached for a few texts."""
        key = tuple(ids)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            with _blas_one_thread():
                hidden = gemma.hidden_states(self.weights, self.config, [self.config.bos_id, *key])
                out = gemma.logits(self.weights, hidden[-1])
            self._cache[key] = out
            while len(self._cache) > _LOGITS_CACHE:
                self._cache.popitem(last=False)
            return out

    def distribution(self, text_or_ids: str | Sequence[int], *, top: int = 20,
                     temperature: float = 1.0) -> Distribution:
        """The `top` most likely next tokens after the text, at this temperature."""
        if top < 1:
            raise InputError(f"The number of candidates must be at least 1, not {top}.",
                             "Ask for --top 1 or more.")
        started = time.perf_counter()
        ids = self._ids(text_or_ids)
        logits = self.next_logits(ids)
        probs = probabilities(logits, temperature)
        with np.errstate(divide="ignore"):
            logprobs = np.log(probs)
        top = min(top, probs.size)
        best = np.argpartition(-probs, top - 1)[:top]
        order = best[np.argsort(-probs[best], kind="stable")]
        candidates = [
            Candidate(rank, int(i), self.tokenizer.id_to_piece(int(i)), self.decode([int(i)]),
                      float(probs[i]), float(logprobs[i]), float(logits[i]))
            for rank, i in enumerate(order, start=1)
        ]
        nz = probs[probs > 0]
        entropy = max(0.0, float(-(nz * np.log2(nz)).sum()))
        return Distribution(self.tokens(ids), temperature, candidates, entropy,
                            time.perf_counter() - started, probs, logits)

    def sample(self, dist: Distribution, rng: np.random.Generator | None = None) -> Candidate:
        """One random draw from the whole distribution (not only the top candidates shown)."""
        rng = rng or np.random.default_rng()
        cdf = dist.cdf
        chosen = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
        while dist.probs[chosen] == 0:  # rounding at the very end of the running total
            chosen -= 1
        rank = int((dist.probs > dist.probs[chosen]).sum()) + 1
        p = float(dist.probs[chosen])
        return Candidate(rank, chosen, self.tokenizer.id_to_piece(chosen), self.decode([chosen]), p,
                         math.log(p), float(dist.logits[chosen]))

    # --- scoring a text -----------------------------------------------------------------------

    def score(self, text: str) -> Score:
        """Each token's log-probability given the text before it, and the perplexity.

        Perplexity = exp(-mean log p): the number of equally likely choices the model was, on
        average, torn between. A working model gives tens on ordinary prose; a broken one thousands.
        """
        started = time.perf_counter()
        ids = self._ids(text)
        if not ids:
            raise InputError("There is no text to score.", "Give at least one character.")
        seq = [self.config.bos_id, *ids]
        with self._lock:
            with _blas_one_thread():
                hidden = gemma.hidden_states(self.weights, self.config, seq)[:-1]  # t predicts t+1
            rows = []  # the vocabulary products below are large enough for every BLAS thread
            for start in range(0, len(ids), _SCORE_ROWS):  # T x 262,144 logits at once is a lot
                chunk = gemma.logits(self.weights, hidden[start: start + _SCORE_ROWS])
                chunk -= chunk.max(axis=1, keepdims=True)
                logz = np.log(np.exp(chunk).sum(axis=1, dtype=np.float64))
                target = np.asarray(ids[start: start + _SCORE_ROWS])
                own = chunk[np.arange(len(target)), target].astype(np.float64)
                ranks = (chunk > own[:, None]).sum(axis=1) + 1
                best = chunk.argmax(axis=1)
                rows += list(zip(target, own - logz, ranks, best, strict=True))
        tokens = [
            ScoredToken(int(i), self.tokenizer.id_to_piece(int(i)), self.decode([int(i)]),
                        float(lp), float(math.exp(lp)), int(rank), self.decode([int(b)]))
            for i, lp, rank, b in rows
        ]
        mean = float(np.mean([t.logprob for t in tokens]))
        return Score(tokens, mean, math.exp(-mean), time.perf_counter() - started)


_MODELS: dict[Path, NextTokenModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(cache_dir: Path) -> NextTokenModel:
    """The process-wide model for this cache folder (converted from the GGUF on first use)."""
    key = Path(cache_dir).resolve()
    with _MODELS_LOCK:
        if key not in _MODELS:
            started = time.perf_counter()
            files = gemma_files.load(key)
            seconds = time.perf_counter() - started
            _MODELS[key] = NextTokenModel(files, seconds)
            log.info("next-token model ready in %.1f s", seconds)
        return _MODELS[key]
