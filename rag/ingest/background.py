"""Ingest a folder on a background thread, so the app can answer while the first start indexes.

The app's first start ingests the bundled corpus into an empty store. With a slow embedding model
(e5 embeds 20-30x slower than USE) that takes minutes, and a person should not wait for it to ask a
question: the job runs on its own thread, in small groups so that each group becomes searchable
as soon as it is written, and reports what it is doing (`JobStatus`) for the UI to draw. One job per
data dir and collection per process; asking again returns the running (or finished) job.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.ingest.pipeline import IngestReport
    from rag.progress import Progress

log = logging.getLogger(__name__)

GROUP_CHUNKS = 32
"""Chunks embedded and written per step: small, so that searchable documents appear early."""


@dataclass
class JobStatus:
    """A snapshot of one background ingest, safe to read from any thread."""

    phase: str
    """`starting`, `reading` (files chunked so far), `embedding` (all read, vectors being written),
    `done` or `failed`."""
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)
    report: IngestReport | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.phase not in ("done", "failed")

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class IngestJob:
    """One folder ingested on a daemon thread; `status()` says how far it got."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings.model_copy(update={"ingest_batch_chunks": GROUP_CHUNKS})
        self.folder = folder
        self._lock = threading.Lock()
        self._status = JobStatus("starting")
        self._thread = threading.Thread(target=self._run, name="rag-first-ingest", daemon=True)

    def start(self) -> IngestJob:
        self._thread.start()
        return self

    def status(self) -> JobStatus:
        with self._lock:
            s = self._status
            return JobStatus(s.phase, s.files_done, s.files_total, s.chunks, s.current, s.started,
                             s.report, s.error)

    def wait(self, timeout: float | None = None) -> JobStatus:
        self._thread.join(timeout)
        return self.status()

    def _update(self, **changes: object) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self._status, name, value)

    def _progress(self, event: Progress) -> None:
        total = event.total or 0
        phase = "embedding" if event.done >= total else "reading"
        self._update(phase=phase, files_done=event.done, files_total=total,
                     chunks=event.chunks or 0, current=Path(event.item).name)

    def _run(self) -> None:
        from rag.errors import RagError
        from rag.ingest.pipeline import Ingestor

        try:
            report = Ingestor(self.settings).ingest([self.folder], progress=self._progress,
                                                   lock_wait_s=300)
        except RagError as exc:
            self._update(phase="failed", error=str(exc))
            return
        except Exception as exc:  # the thread must not die silently: the UI shows this
            log.exception("background ingest of %s failed", self.folder)
            self._update(phase="failed", error=f"{type(exc).__name__}: {exc}")
            return
        log.info("background ingest of %s: %s", self.folder, report.as_dict())
        self._update(phase="done", report=report)


_JOBS: dict[tuple[str, str], IngestJob] = {}
_JOBS_LOCK = threading.Lock()


def job_key(settings: Settings, collection: str) -> tuple[str, str]:
    return (str(settings.data_dir.absolute()), collection)


def start_job(settings: Settings, collection: str, folder: Path) -> IngestJob:
    """The job ingesting `folder` into this store's collection, started once per process."""
    key = job_key(settings, collection)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is None:
            job = _JOBS[key] = IngestJob(settings, folder).start()
        return job


def current_job(settings: Settings, collection: str) -> IngestJob | None:
    with _JOBS_LOCK:
        return _JOBS.get(job_key(settings, collection))
