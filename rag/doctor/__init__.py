"""`rag doctor`: what is configured, what answers, and what to do about each problem found.

Each check is independent and catches its own failures, so one broken part (a store that is down,
a rejected key) never hides the report on the others. Nothing here writes to the store or the
record manager: an embedded store that does not exist yet is reported, not created. Secrets are
shown masked (`Settings.masked()`); provider error messages never carry the key. Fixing problems
is left to the person; the report says how.

The checks, by kind: `configured` (which embedding model and answerer the settings choose),
`store` (the store answers and agrees with itself), `machine` (cache file, a running ingest, OCR),
`probes` (the providers asked for real); `report` holds the findings and renders them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag.config import Settings
from rag.doctor import configured, machine, probes
from rag.doctor import store as store_checks
from rag.doctor.report import Check, Diagnosis, fix_of


def diagnose(settings: Settings) -> Diagnosis:
    """Run every check; never raises for a problem it can describe."""
    report = Diagnosis(settings=settings.masked())
    info = _guarded("embedding", settings, report, lambda: configured.embedding(settings, report))
    _guarded("llm", settings, report, lambda: configured.llm(settings, report))
    _guarded("store", settings, report, lambda: store_checks.check(settings, report, info))
    _guarded("ingest lock", settings, report, lambda: machine.ingest_lock(settings, report))
    _guarded("embedding cache", settings, report, lambda: machine.cache(settings, report))
    _guarded("ocr", settings, report, lambda: report.checks.append(machine.ocr()))
    if info is not None:
        _guarded("provider", settings, report, lambda: probes.provider(settings, report, info))
    return report


def _guarded(name: str, settings: Settings, report: Diagnosis, check: Callable[[], Any]) -> Any:
    """Run one check; a failure it did not foresee (a damaged state file) becomes a failed check."""
    from rag.failures import explain

    try:
        return check()
    except Exception as exc:
        error = explain(exc, settings)
        message = error.problem if error is not None else f"{type(exc).__name__}: {exc}"
        report.checks.append(Check(name, False, message, fix_of(error or exc)))
        return None
