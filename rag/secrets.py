"""Secrets masked wherever text leaves the process: messages, settings shown, and logs.

A secret can hide in more places than `OPENAI_API_KEY`: the user and password of a URL
(`http://user:SECRET@proxy/v1`), a query parameter of `OPENAI_BASE_URL` (`?api-key=...`, as some
gateways want), and an error body in which a server repeats the key it was sent. `mask_url` hides
the first two in any URL; `mask_text` hides every known secret value and every such URL inside a
text; `install_log_masking` applies `mask_text` to every log record of the process (httpx logs each
request URL at INFO, credentials included). `rag.config.get_settings` registers the secrets of the
settings in force and installs the log masking, so every front end gets both.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

if TYPE_CHECKING:
    from rag.config import Settings

MASK = "***"
_SENSITIVE = re.compile(r"key|token|secret|passw|pwd|sig|auth|credential|session", re.IGNORECASE)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_KEY_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}")
"""OpenAI-style keys, masked even when they are not ours (a server may echo another)."""

_known: set[str] = set()
_lock = threading.Lock()


def mask_url(url: str | None) -> str | None:
    """The URL without its `user:password@` part and with sensitive query values masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        query = "&".join(_mask_param(pair) for pair in query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _mask_param(pair: str) -> str:
    name, eq, value = pair.partition("=")
    return f"{name}={MASK}" if eq and value and _SENSITIVE.search(name) else pair


def secrets_of(settings: Settings) -> list[str]:
    """The secret values these settings hold: the key, and the credentials inside the base URL."""
    found: list[str] = []
    if settings.openai_api_key is not None:
        found.append(settings.openai_api_key.get_secret_value())
    url = settings.openai_base_url
    if url:
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is not None:
            found += [v for v in (parts.username, parts.password) if v]
            found += [v for k, v in parse_qsl(parts.query) if v and _SENSITIVE.search(k)]
    return [s for s in found if len(s) >= 4]


def register(values: Iterable[str]) -> None:
    """Remember secret values (and their URL-encoded spellings) for `mask_text`."""
    with _lock:
        for value in values:
            if len(value) >= 4:
                _known.update({value, quote(value, safe=""), quote_plus(value)})


def mask_text(text: str) -> str:
    """`text` with every registered secret, every credential in a URL and key-like token masked."""
    if not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL.sub(lambda m: mask_url(m.group(0)) or "", text)
    return _KEY_LIKE.sub(lambda m: f"{m.group(1)}-{MASK}", text)


_installed = False


def install_log_masking() -> None:
    """Mask every log record this process creates, whichever library logs it and wherever it goes.

    A record factory rather than a handler filter: handlers added later (Streamlit's, pytest's)
    and records of any logger are covered. Exceptions attached to a record are formatted and
    masked here too, since their messages may carry a server's error body.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logging module's to report
            return record
        record.msg, record.args = mask_text(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
