"""A worker process's recently used uploaded data sets, kept in memory between its jobs.

A sweep's trials all train on the same data set; without this, each one reads the NPZ back
from the artifacts store and decodes it again, which for a small job costs more than its
training. An uploaded data set's id is derived from its file's SHA-256 (core.store.datasets),
so an id always names the same arrays and an entry never goes stale; a deleted data set is
no longer found by its id, so its entry is never asked for again and ages out. Bounded by
bytes (EPOCHAL_DATASET_CACHE_BYTES; 0 turns it off), least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from core.data.base import Arrays


def _nbytes(arrays: Arrays) -> int:
    return int(arrays.x.nbytes + arrays.y.nbytes)


class ArrayCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Arrays] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str, load: Callable[[], Arrays]) -> Arrays:
        """The arrays cached under `key`, or `load()`'s, kept if they fit. Callers must not
        change the arrays in place (as with the built-in data sets' cached arrays)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
        arrays = load()
        size = _nbytes(arrays)
        if size > self.max_bytes:
            return arrays
        with self._lock:
            if key not in self._entries:
                self._entries[key] = arrays
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= _nbytes(old)
        return arrays
