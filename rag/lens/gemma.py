"""Gemma 3 270M's forward pass in plain numpy: token IDs in, next-token scores (logits) out.

Written to be read from top to bottom by someone learning how a language model works; no
caching tricks, no batching, every step one line. The weights come from `rag.lens.gemma_files`
(float32 arrays named as in the GGUF file); `Config` holds the numbers (18 layers, 640 dims).

The recipe, in order:
1. each token ID picks one row of the embedding table (262,144 rows x 640 numbers), scaled by
   sqrt(640);
2. 18 blocks, each: RMS-normalize, attention (4 query heads sharing 1 key/value head, queries
   and keys normalized, positions encoded by rotating them: RoPE), normalize its output and add it
   back; then RMS-normalize, a gated feed-forward layer (GELU), normalize and add back;
   five of every six layers only look at the last 512 tokens (sliding window), every sixth at all;
3. a final RMS-normalize, then a dot product with every embedding row (the table is reused, "tied")
   gives one score per vocabulary entry; softmax turns the scores into probabilities.

Everything stays float32: one numpy float64 scalar (e.g. `np.sqrt(640)`) silently promotes the
activations to float64 and makes each step many times slower.
What it leaves out: KV caching (the whole text is recomputed each time; fine for a few hundred
tokens), batching, and training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rag.lens.gemma_files import Config

Weights = Mapping[str, np.ndarray]


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Scale each vector to root-mean-square 1, then by learned weights (GGUF stores 1 + w)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (what Gemma was trained with)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def rope(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """Rotary position embedding, NEOX layout: the first and second halves of each head's vector
    form pairs rotated by an angle that grows with the position, at a different speed per pair."""
    half = x.shape[-1] // 2
    speeds = base ** (-np.arange(half, dtype=np.float64) / half)
    angles = (positions[:, None] * speeds[None, :]).astype(np.float32)  # (T, half)
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]  # broadcast over heads
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention_mask(n: int, window: int | None) -> np.ndarray:
    """True where position i may look at position j: j <= i, and i - j < window if windowed."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= (i - j) < window
    return allowed


def attention(w: Weights, cfg: Config, layer: int, x: np.ndarray) -> np.ndarray:
    """One layer's self-attention over the normalized inputs x (T, 640) -> (T, 640)."""
    p = f"blk.{layer}."
    n = x.shape[0]
    q = (x @ w[p + "attn_q.weight"].T).reshape(n, cfg.n_heads, cfg.head_dim)
    k = (x @ w[p + "attn_k.weight"].T).reshape(n, cfg.n_kv_heads, cfg.head_dim)
    v = (x @ w[p + "attn_v.weight"].T).reshape(n, cfg.n_kv_heads, cfg.head_dim)
    q = rms_norm(q, w[p + "attn_q_norm.weight"], cfg.norm_eps)
    k = rms_norm(k, w[p + "attn_k_norm.weight"], cfg.norm_eps)
    is_global = cfg.is_global(layer)
    base = cfg.rope_base_global if is_global else cfg.rope_base_local
    positions = np.arange(n)
    q, k = rope(q, positions, base), rope(k, positions, base)
    group = cfg.n_heads // cfg.n_kv_heads  # query heads sharing one key/value head
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    # (heads, T, T): how much each position attends to each earlier one
    scores = np.einsum("ihd,jhd->hij", q, k) * (1.0 / math.sqrt(cfg.head_dim))
    mask = attention_mask(n, None if is_global else cfg.sliding_window)
    weights = softmax(np.where(mask, scores, -np.inf))
    out = np.einsum("hij,jhd->ihd", weights, v).reshape(n, cfg.n_heads * cfg.head_dim)
    return out @ w[p + "attn_output.weight"].T


def feed_forward(w: Weights, layer: int, x: np.ndarray) -> np.ndarray:
    """The gated MLP: GELU(gate(x)) * up(x), projected back down to 640 numbers."""
    p = f"blk.{layer}."
    gate = gelu(x @ w[p + "ffn_gate.weight"].T)
    up = x @ w[p + "ffn_up.weight"].T
    return (gate * up) @ w[p + "ffn_down.weight"].T


def hidden_states(w: Weights, cfg: Config, ids: Sequence[int]) -> np.ndarray:
    """The final, normalized vector of every position (T, 640); position t predicts token t+1."""
    if not len(ids):
        raise ValueError("hidden_states needs at least one token (the BOS token counts)")
    eps = cfg.norm_eps
    x = w["token_embd.weight"][np.asarray(ids)] * np.float32(math.sqrt(cfg.dim))
    for layer in range(cfg.n_layers):
        p = f"blk.{layer}."
        h = attention(w, cfg, layer, rms_norm(x, w[p + "attn_norm.weight"], eps))
        x = x + rms_norm(h, w[p + "post_attention_norm.weight"], eps)
        h = feed_forward(w, layer, rms_norm(x, w[p + "ffn_norm.weight"], eps))
        x = x + rms_norm(h, w[p + "post_ffw_norm.weight"], eps)
    return rms_norm(x, w["output_norm.weight"], eps)


def logits(w: Weights, hidden: np.ndarray) -> np.ndarray:
    """A score for every vocabulary entry: the hidden vector's dot product with each embedding row."""
    return hidden @ w["token_embd.weight"].T
