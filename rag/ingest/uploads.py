"""Files uploaded in the app: saved under the data dir with safe names, then ingested.

A browser supplies the file name, so it is untrusted: only its last path part is kept, stripped
of anything but letters (Japanese included), digits and `._-`, and only the types the loaders read
and sizes under the cap are accepted. Ingest goes through the same `Ingestor` as `rag ingest`.
The upload widget itself lives in `rag.ui.sidebar`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.ingest.pipeline import Ingestor, IngestReport
from rag.progress import ProgressFn

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\-]+")


@dataclass(frozen=True)
class Rejected:
    name: str
    reason: str


def uploads_dir(settings: Settings) -> Path:
    return settings.data_dir / "uploads"


def sanitize_name(name: str) -> str:
    """A file name safe to join to the uploads folder: no folders, no `..`, no hidden files."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip("._ ")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip("._ ") or "upload"
    suffix = suffix.lower()
    keep = MAX_NAME_CHARS - len(suffix) - 1
    return f"{stem[:keep]}.{suffix}" if suffix else stem[:MAX_NAME_CHARS]


def save_uploads(
    settings: Settings, files: Iterable[tuple[str, bytes]]
) -> tuple[list[Path], list[Rejected]]:
    """Write accepted files under the uploads folder; say why each other file was refused."""
    folder = uploads_dir(settings)
    saved: list[Path] = []
    rejected: list[Rejected] = []
    for name, data in files:
        safe = sanitize_name(name)
        suffix = Path(safe).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
            rejected.append(Rejected(name, f"unsupported type {suffix or '(none)'}: use {kinds}"))
            continue
        if len(data) > settings.max_file_bytes:
            rejected.append(Rejected(
                name, f"{len(data) / 1048576:.3g} MB is over the {settings.max_file_mb:g} MB cap "
                "(RAG_MAX_FILE_MB)"))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe
        if target.resolve().parent != folder.resolve():  # belt and braces after sanitising
            rejected.append(Rejected(name, "unsafe file name"))
            continue
        target.write_bytes(data)
        saved.append(target)
    return saved, rejected


def ingest_uploads(
    settings: Settings, files: Iterable[tuple[str, bytes]], *, progress: ProgressFn | None = None,
) -> tuple[IngestReport | None, list[Rejected]]:
    """Save then ingest; the report is None when no file was accepted."""
    saved, rejected = save_uploads(settings, files)
    if not saved:
        return None, rejected
    report = Ingestor(settings).ingest(saved, progress=progress, lock_wait_s=60)
    return report, rejected
