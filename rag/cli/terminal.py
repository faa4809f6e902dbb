"""What every command shares at the terminal: lines for a person, one JSON document, errors.

Human lines go to stderr so stdout stays parseable; `--json` prints exactly one JSON document on
stdout and nothing else there. Everything printed passes `printable`, so a secret never reaches the
terminal and a file name that is not UTF-8 prints as `\\xNN` instead of crashing the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rag.config import Settings


def emit_json(data: Any) -> None:
    sys.stdout.write(printable(json.dumps(data, ensure_ascii=False, indent=2)) + "\n")


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays parseable)."""
    sys.stderr.write(printable(message) + "\n")


def table(rows: list[tuple[str, str]]) -> None:
    """Name/value rows on stdout, the names padded to one column."""
    width = max(len(name) for name, _ in rows) + 1
    for name, value in rows:
        sys.stdout.write(f"{name:<{width}} {value}\n")


def printable(text: str) -> str:
    """Secrets masked; bytes of a non-UTF-8 file name (lone surrogates) as `\\xNN`, not a crash."""
    from rag.secrets import mask_text

    text = mask_text(text)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


_TEXT_ARGS = ("query", "question", "text")


def check_text_args(args: argparse.Namespace) -> None:
    """A question typed in a terminal that does not send UTF-8 arrives as undecodable bytes."""
    from rag.errors import QueryError

    for name in _TEXT_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            raise QueryError(
                f"The {name} is not UTF-8 text (the terminal sent another encoding).",
                "Use a UTF-8 terminal or locale (e.g. `export LANG=C.UTF-8`) and type it again.",
            )


def report_failure(exc: Exception, settings: Settings | None, as_json: bool) -> int | None:
    """Print a failure as `error: …` (or `{"error", "kind"}`) and return its exit code.

    Settings that fail validation, failures from below that `rag.failures` can explain, and our own
    `RagError`s end here; for anything else (a bug) it returns None, so the caller re-raises it
    with its traceback.
    """
    from pydantic import ValidationError

    from rag.failures import explain

    if isinstance(exc, ValidationError):
        message, kind, code = "invalid settings: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ), "ConfigError", 1
    else:
        error = explain(exc, settings)
        if error is None:
            return None
        message, kind, code = str(error), type(error).__name__, error.exit_code
    if as_json:
        emit_json({"error": message, "kind": kind})
    else:
        say(f"error: {message}")
    return code
