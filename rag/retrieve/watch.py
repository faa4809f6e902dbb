"""Keep a long-lived process's keyword index (and vector sample) current with a shared Chroma server.

Another machine's write moves the store's write version (`rag.state`); the next search notices
and refreshes BM25 from the files whose records changed. That refresh costs what changed: at a
million chunks a 1 % change (10,000 chunks deleted or added) is ~6 s of reading and tokenizing,
which the first question after the write would pay. The app instead polls the version every
few seconds in a daemon thread and refreshes then, so the question that follows finds the index
current; a question asked during a refresh waits for it (`bm25.index_for` holds one lock per
index), so no answer ever comes from a stale index. A refresh that runs while the other machine
is still writing catches up by parts, so little is left when its ingest finishes. For a large
collection it also reads the debug panel's next vector sample (`lens.collection.vectors_for`).

Only for a Chroma server: an embedded store is written by processes on this machine, and the
search path reopens it before reading (`Searcher._reopening`), which a thread must not race.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from rag.state import read_version

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.retrieve.searcher import Searcher

log = logging.getLogger(__name__)

EVERY_S = 2.0
"""Seconds between two reads of the write version (~1 ms each on a server)."""


class Watcher:
    """Refreshes `searcher`'s BM25 index (and a large collection's sample) whenever the store's
    write version moves, and once at start."""

    def __init__(self, searcher: Searcher, every_s: float = EVERY_S) -> None:
        self.searcher = searcher
        self.every_s = every_s
        self.seen: str | None = None
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One poll: refresh if the version moved since the last one; True if it did."""
        from rag.lens import collection
        from rag.retrieve import bm25

        settings, coll = self.searcher.settings, self.searcher.collection
        version = read_version(settings, coll.name)
        if version == self.seen:
            return False
        bm25.index_for(settings, coll, version)
        if collection.is_sampled(settings, coll):  # the debug panel's sample, read before a click needs it
            collection.vectors_for(settings, self.searcher.info, coll)
        self.seen = version
        self.refreshes += 1
        return True

    def start(self) -> Watcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rag-store-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception:  # a server restarting must not end the watch; the question path reports
                log.warning("store watcher: refresh failed, retrying in %.0f s", self.every_s, exc_info=True)


def watched(settings: Settings) -> bool:
    """Whether the app keeps a watcher for these settings: when it reads a Chroma server."""
    return bool(settings.chroma_host)


def watch(searcher: Searcher) -> Watcher | None:
    """A started watcher for `searcher` when it reads a Chroma server, else None."""
    if not watched(searcher.settings):
        return None
    return Watcher(searcher).start()
