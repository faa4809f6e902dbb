"""Domain errors with messages a person can act on.

Library code raises these; the CLI maps them to exit codes and the app to `st.error`. Each message
says what went wrong and which setting or command fixes it, and never contains a secret.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: something the user can fix, explained in `str(self)`."""

    exit_code = 1


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


class LoadError(RagError):
    """One file could not be read; the reason is shown next to its path."""


class EmptyStoreError(RagError):
    """Nothing has been ingested yet into the collection being searched."""


class InputError(RagError):
    """The text or option given cannot be used as it is (empty, too long, out of range)."""
