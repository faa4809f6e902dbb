"""The doctor's report: one `Check` per finding, gathered in a `Diagnosis`, rendered for a person."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rag.errors import RagError


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


def problem_of(exc: BaseException) -> str:
    """What went wrong, without the fix (shown on its own line)."""
    return exc.problem if isinstance(exc, RagError) else str(exc)


def fix_of(exc: BaseException) -> str:
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
