"""What the settings choose: the embedding model and the answerer, and why (no network here)."""

from __future__ import annotations

from typing import Any

from rag.config import Settings
from rag.doctor.probes import probe_chat
from rag.doctor.report import Check, Diagnosis, fix_of, problem_of
from rag.errors import RagError


def embedding(settings: Settings, report: Diagnosis) -> Any:
    """The resolved embedding model (its `EmbeddingInfo`), or None when the settings name none."""
    from rag.embed.providers import resolve

    try:
        info = resolve(settings)
    except RagError as exc:
        report.embedding = {"error": str(exc)}
        report.checks.append(Check("embedding", False, problem_of(exc), fix_of(exc)))
        return None
    report.embedding = {**info.as_dict(), "reason": info.reason, "collection": info.collection_name}
    report.checks.append(Check(
        "embedding", True, f"{info.provider} {info.model} ({info.dims} dims): {info.reason}"))
    return info


def llm(settings: Settings, report: Diagnosis) -> None:
    """The answerer in use; with an LLM, one capped chat request proves it answers."""
    from rag.answer.llm import resolve_llm

    try:
        chosen = resolve_llm(settings)
    except RagError as exc:
        report.llm = {"error": str(exc)}
        report.checks.append(Check("llm", False, problem_of(exc), fix_of(exc)))
        return
    report.llm = {"mode": chosen.mode, "model": chosen.model, "reason": chosen.reason}
    what = (f"{chosen.model} ({chosen.reason})" if chosen.mode == "llm"
            else f"extractive answers ({chosen.reason})")
    report.checks.append(Check("llm", True, what))
    if chosen.mode == "llm":
        report.checks.append(probe_chat(settings, chosen.model or settings.llm_model))
