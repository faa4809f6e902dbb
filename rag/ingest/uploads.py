"""Files uploaded in the app: saved under the data dir with safe names, then ingested.

A browser supplies the file name, so it is untrusted: only its last path part is kept, stripped
of anything but letters (Japanese included), digits and `._-`, and only the types the loaders read
and sizes under the cap are accepted. Ingest goes through the same `Ingestor` as `rag ingest`.
The upload widget itself lives in `rag.ui.sidebar`.

Every upload keeps its own identity: the name the browser sent. Sanitising can map two names to
one (`議事録 (1).md` and `議事録_1_.md` both become `議事録_1.md`), so the saved name of each
original name is remembered (`upload-names.json` beside the folder) and a name already taken by
another original gets a free variant (`議事録_1-2.md`); two files of one name in a single upload
(two `README.md` from different folders) are both kept the same way. Uploading the same name
again replaces that document: it is how an uploaded document is updated.
"""

from __future__ import annotations

import fcntl
import json
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


def names_file(settings: Settings) -> Path:
    """Saved file name -> the name the browser sent, for every upload."""
    return settings.data_dir / "upload-names.json"


def save_uploads(
    settings: Settings, files: Iterable[tuple[str, bytes]]
) -> tuple[list[Path], list[Rejected]]:
    """Write accepted files under the uploads folder; say why each other file was refused."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "upload-names.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two browser sessions uploading at once
        return _save(settings, files)


def _load_names(path: Path) -> dict[str, str]:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
        return names if isinstance(names, dict) else {}
    except (OSError, ValueError):
        return {}


def _target_name(safe: str, original: str, names: dict[str, str], folder: Path,
                 taken_now: set[str]) -> str:
    """The saved name for `original`: its own from before, else `safe` or a free variant of it."""
    for saved, sent in names.items():
        if sent == original and saved not in taken_now:
            return saved
    stem, dot, suffix = safe.rpartition(".")
    if not dot:
        stem, suffix = safe, ""
    candidate, n = safe, 1
    while candidate in taken_now or (
        (folder / candidate).exists() or (folder / candidate).is_symlink()
    ) and names.get(candidate, candidate) != original:
        n += 1
        candidate = f"{stem}-{n}.{suffix}" if suffix else f"{stem}-{n}"
    return candidate


def _save(settings: Settings, files: Iterable[tuple[str, bytes]]) -> tuple[list[Path], list[Rejected]]:
    folder = uploads_dir(settings)
    index = names_file(settings)
    names = _load_names(index)
    saved: list[Path] = []
    rejected: list[Rejected] = []
    taken_now: set[str] = set()
    contents: dict[str, bytes] = {}
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
        original = unicodedata.normalize("NFC", name)
        if contents.get(original) == data:  # the very same file twice in one upload
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / _target_name(safe, original, names, folder, taken_now)
        if target.resolve().parent != folder.resolve():  # belt and braces after sanitising
            rejected.append(Rejected(name, "unsafe file name"))
            continue
        target.write_bytes(data)
        saved.append(target)
        taken_now.add(target.name)
        contents[original] = data
        names[target.name] = original
    if saved:
        tmp = index.with_suffix(".tmp")
        tmp.write_text(json.dumps(names, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(index)
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
