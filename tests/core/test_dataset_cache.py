"""A worker process keeps its recently used uploaded data sets in memory, bounded by bytes."""

from __future__ import annotations

import numpy as np

from core.data.base import Arrays
from core.data.cache import ArrayCache


def arrays(rows: int) -> Arrays:
    return Arrays(np.zeros((rows, 4), dtype=np.float32), np.zeros(rows, dtype=np.int64))


class Loader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, key: str, rows: int = 10):
        def load() -> Arrays:
            self.calls.append(key)
            return arrays(rows)

        return load


def test_a_data_set_is_read_once_while_it_stays_in_the_cache() -> None:
    cache, load = ArrayCache(10_000), Loader()
    first = cache.get("a", load("a"))
    assert cache.get("a", load("a")) is first
    assert load.calls == ["a"] and (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_goes_first_when_the_bytes_run_out() -> None:
    cache, load = ArrayCache(3 * 240), Loader()  # 10 rows: 160 + 80 bytes
    for key in ("a", "b", "c"):
        cache.get(key, load(key))
    cache.get("a", load("a"))  # a is now the most recent
    cache.get("d", load("d"))  # b goes
    cache.get("a", load("a"))
    cache.get("c", load("c"))
    cache.get("b", load("b"))
    assert load.calls == ["a", "b", "c", "d", "b"]


def test_a_data_set_larger_than_the_cache_or_a_cache_of_zero_keeps_nothing() -> None:
    for cache, rows in ((ArrayCache(100), 10), (ArrayCache(0), 1)):
        load = Loader()
        cache.get("big", load("big", rows))
        cache.get("big", load("big", rows))
        assert load.calls == ["big", "big"]
