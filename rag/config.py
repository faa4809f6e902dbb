"""Settings: the one place that reads the environment and `.env`.

Everything else receives a `Settings` object. Names follow what users already have in their
shells (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `CHROMA_HOST`) and `RAG_*` for our own knobs.
`get_settings()` is cached; tests call `get_settings.cache_clear()` after changing the environment.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.secrets import install_log_masking, mask_url, register, secrets_of

__all__ = ["Settings", "get_settings", "mask_url"]

EmbeddingProviderName = Literal["auto", "openai", "local", "use", "e5"]
LocalModelName = Literal["use", "e5"]
AnswerModeName = Literal["auto", "llm", "extractive"]
RetrievalModeName = Literal["vector", "bm25", "hybrid"]
HybridFusionName = Literal["score", "rrf"]


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every knob the tool has, with the default that works offline on one machine."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path(".rag"), description="Where Chroma, the record manager and caches live.")

    embedding_provider: EmbeddingProviderName = "auto"
    local_model: LocalModelName = Field(
        "e5", description="The bundled model `local` (and `auto` without a key) means; the default "
        "was chosen by measurement (README, Retrieval quality).",
    )
    e5_bundled_vectors: bool = Field(
        True, description="Prefill e5's embedding cache with the shipped vectors of docs_corpus/ "
        "(exact chunk texts only; rag/embed/bundled.py); false embeds everything, as benchmarks need.",
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_embedding_model: str = "text-embedding-3-small"
    openai_embedding_dims: int | None = Field(1536, ge=1, le=3072)
    openai_timeout_s: float = Field(30.0, gt=0)
    openai_max_retries: int = Field(4, ge=0, le=10)
    openai_concurrency: int = Field(4, ge=1, le=16, description="Embedding requests in flight at once.")
    openai_batch_size: int = Field(512, ge=1, le=2048, description="Inputs per embedding request.")

    answer_mode: AnswerModeName = "auto"
    answer_abstain: bool = Field(
        True, description="Extractive mode says 'not in the documents' when the evidence is weak."
    )
    answer_min_cosine: float | None = Field(
        None, ge=-1, le=1,
        description="Override the embedding model's calibrated best-hit cosine for answering.",
    )
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = Field(0.2, ge=0, le=2)
    llm_logprobs: bool = Field(True, description="Ask the chat server for token logprobs (debug panel).")
    corpus_dir: Path | None = Field(
        None, description="Folder the app ingests on first start; default: docs_corpus/ beside app.py."
    )

    lm_dir: Path | None = Field(
        None, description="Where the next-token model's converted weights live (about 1.1 GB); "
        "default: lm/ in the data dir."
    )

    chroma_host: str | None = Field(None, validation_alias=_env("CHROMA_HOST"))
    chroma_port: int = Field(8000, validation_alias=_env("CHROMA_PORT"))
    hnsw_ef_search: int = Field(100, ge=10)
    hnsw_ef_construction: int = Field(100, ge=10)
    hnsw_m: int = Field(16, ge=4)

    chunk_size: int = Field(300, ge=16, description="Chunk length in cl100k tokens.")
    chunk_overlap: int = Field(50, ge=0)
    max_file_mb: float = Field(20.0, gt=0)
    ingest_batch_chunks: int = Field(256, ge=1, description="Chunks embedded and written per step.")

    retrieval_mode: RetrievalModeName = Field(
        "hybrid", description="hybrid matched or beat vector and BM25 alone on JSQuAD and XQuAD dev."
    )
    top_k: int = Field(5, ge=1, le=100)
    score_threshold: float = Field(0.0, ge=-1, le=1)
    hybrid_vector_weight: float | None = Field(
        None, ge=0, le=1,
        description="Share of the vector score in hybrid fusion; unset: the embedding model's own "
        "(rag.embed.providers.OFFLINE_MODELS, tuned on the dev sets).",
    )
    hybrid_candidates: int = Field(50, ge=1, description="Candidates taken from each index before fusion.")
    hybrid_fusion: HybridFusionName = Field(
        "score", description="score: weighted sum of normalised scores; rrf: weighted reciprocal rank fusion."
    )
    hybrid_cross_script_weight: float | None = Field(
        None, ge=0, le=1,
        description="A chunk in the other script than the question (BM25 cannot match it) is credited "
        "this share of its vector evidence in place of BM25; unset: the embedding model's own.",
    )
    hybrid_rrf_k: int = Field(60, ge=1, description="The k of reciprocal rank fusion (hybrid_fusion=rrf).")

    @field_validator("openai_api_key", "openai_base_url", "chroma_host", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An exported-but-empty variable means "not set", as it does in most tools."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _key_is_plain_text(cls, value: object) -> object:
        """A key pasted with a zero-width space or a smart quote would fail deep inside httpx
        (headers are ASCII); say so here, where the fix is obvious, without echoing the key."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        for position, ch in enumerate(value, start=1):
            if not ch.isascii() or not ch.isprintable() or ch.isspace():
                raise ValueError(
                    f"contains {unicodedata.name(ch, 'an invisible character')} (U+{ord(ch):04X}) "
                    f"at character {position}: paste the key again as plain text"
                )
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info) -> int:
        size = info.data.get("chunk_size", 300)
        if value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_size ({size})")
        return value

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def state_db(self) -> Path:
        """SQLite file holding the embedding cache (the manifest and records live in the store)."""
        return self.data_dir / "state.sqlite3"

    @property
    def lm_cache_dir(self) -> Path:
        """The next-token model's cache: converted once from the GGUF, then memory-mapped."""
        return self.lm_dir or self.data_dir / "lm"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def has_openai(self) -> bool:
        return self.openai_api_key is not None

    def masked(self) -> dict[str, object]:
        """Settings as shown to a person: secrets masked, paths as strings."""
        shown: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                value = f"***{secret[-4:]}" if len(secret) >= 12 else "***"
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        shown["openai_base_url"] = mask_url(self.openai_base_url)
        return shown


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings in force, read once per process; their secrets are masked from here on."""
    settings = Settings()
    register(secrets_of(settings))
    install_log_masking()
    return settings
