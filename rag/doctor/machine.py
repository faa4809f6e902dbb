"""This machine's side: the data dir's cache file, a running ingest, and OCR for scanned PDFs.
None of these are the store; they are what a person checks on the machine itself."""

from __future__ import annotations

import fcntl

from rag.config import Settings
from rag.doctor.report import Check, Diagnosis


def cache(settings: Settings, report: Diagnosis) -> None:
    """The data dir's SQLite file holds only caches now, but a damaged one stops every search."""
    import sqlite3

    path = settings.state_db
    if not path.exists():
        report.checks.append(Check("embedding cache", True, f"none yet ({path})"))
        return
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    report.checks.append(Check("embedding cache", True, f"{path} readable ({tables} tables)"))


def ingest_lock(settings: Settings, report: Diagnosis) -> None:
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


def ocr() -> Check:
    """Scanned PDFs: OCRed or skipped? Optional, so a missing Tesseract is said, not a problem."""
    from rag.ingest.formats import ocr

    found = ocr.status()
    return Check("ocr", True, found.detail, "" if found.available else ocr.INSTALL_FIX)
