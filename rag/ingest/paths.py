"""One identity per file, and file names a person can read, whatever the folder looks like.

A file is known by its real path: `en`, `../en`, `./en/` and a symlink to the folder all name the
same files, so they are stored once (they were stored two or three times, and search returned the
same chunk at ranks 1-3). A symlink whose target lies outside the folder it was found in is not
followed (discovery lists it as skipped): what is stored under a folder is what that folder holds,
`--prune` of the folder can always remove it, and a link to `~/private/` does not pull it in.

File names on Linux are bytes. Names that are not UTF-8 (Shift_JIS names from a ZIP made on
Japanese Windows) reach Python with lone surrogates, which neither SQLite nor JSON accepts. Such a
path is stored under `path_key` (its undecodable bytes written as `\\xNN`, so two different byte
names never share a key) and shown under `readable` (each part decoded as CP932 or EUC-JP when
that reads, else with the same `\\xNN` escapes).
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

_NAME_ENCODINGS = ("cp932", "euc_jp")


def real(path: Path) -> Path:
    """The absolute path with `..`, `.` and every symlink resolved: the file's identity."""
    return Path(os.path.realpath(path))


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it (both real paths)."""
    return path == folder or path.is_relative_to(folder)


def has_undecodable_name(path: Path | str) -> bool:
    """True when the name held bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    text = str(path)
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def path_key(path: Path | str) -> str:
    """The stored spelling of a path: itself when it is valid text, else with `\\xNN` escapes."""
    text = str(path)
    if not has_undecodable_name(text):
        return text
    return os.fsencode(text).decode("utf-8", errors="backslashreplace")


def readable(path: Path | str) -> str:
    """The path as a person reads it: undecodable parts decoded as CP932 or EUC-JP if they can be."""
    text = str(path)
    if not has_undecodable_name(text):
        return text
    return "/".join(_readable_part(part) for part in text.split("/"))


def _readable_part(part: str) -> str:
    if not has_undecodable_name(part):
        return part
    raw = os.fsencode(part)
    for encoding in _NAME_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text.isprintable() and not any(unicodedata.category(ch) == "Co" for ch in text):
            return text  # CP932 maps stray bytes such as 0xFF to private-use characters
    return raw.decode("utf-8", errors="backslashreplace")
