"""Domain errors with messages a person can act on.

Library code raises these; the CLI maps them to exit codes and the app to `st.error`. Each error
carries what went wrong (`problem`) and what to do about it (`fix`), so `rag doctor` and the app can
show the fix on its own line instead of guessing it from the text. `str(error)` reads as one
sentence pair, problem then fix, and never contains a secret.
"""

from __future__ import annotations

from typing import ClassVar


class RagError(Exception):
    """Base class: something the user can fix, explained in `str(self)`."""

    exit_code: ClassVar[int] = 1
    default_fix: ClassVar[str] = "See the message above."

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix or self.default_fix
        super().__init__(f"{problem} {fix}" if fix else problem)


class ConfigError(RagError):
    """A setting is missing, malformed or inconsistent."""


class ProviderError(RagError):
    """The embedding or chat provider refused or failed (bad key, rate limit, unreachable)."""


class StoreError(RagError):
    """The vector store is unreachable or holds something we cannot use."""


class DimensionMismatchError(StoreError):
    """A collection holds vectors of another model or size than the one asked to use it."""


class BusyError(RagError):
    """Another process holds the ingest lock on this data directory."""

    default_fix = "Wait for it to finish and run this again."


class LoadError(RagError):
    """One file could not be read; the reason is shown next to its path."""


class EmptyStoreError(RagError):
    """Nothing has been ingested yet into the collection being searched."""

    default_fix = "Run `rag ingest PATH` (or upload files in the app) first."


class InputError(RagError):
    """The text or option given cannot be used as it is (empty, too long, out of range)."""


class QueryError(InputError):
    """A question or search option that cannot be used (empty, not UTF-8, k out of range)."""


class StateError(RagError):
    """The SQLite state file (records, manifest, embedding cache) is damaged or unreadable."""
