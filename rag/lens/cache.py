"""A small thread-safe LRU for results that are costly to recompute and keyed by collection state.

Streamlit reruns the script on every click from several threads; the lens keeps the last few
collection matrices and projections here rather than in `st.cache_data`, so the CLI shares them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Lru(Generic[V]):
    """At most `limit` values, the least recently used dropped first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[Any, ...], V] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: tuple[Any, ...], value: V) -> V:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return value

    def recall(self, key: tuple[Any, ...]) -> V | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None
