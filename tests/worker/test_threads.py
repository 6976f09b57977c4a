"""Each pool process of a worker gets its share of the cores as torch's thread count."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch
from celery.signals import celeryd_after_setup, worker_process_init

from worker.threads import ThreadShare, install, share


@pytest.fixture
def threads_restored() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "concurrency", "expected"),
    [(2, 1, 2), (2, 2, 1), (8, 3, 2), (2, 4, 1), (16, 4, 4), (4, 0, 4)],
)
def test_each_process_gets_its_share_and_at_least_one_thread(
    cores: int, concurrency: int, expected: int
) -> None:
    assert share(cores, concurrency) == expected


def test_the_signals_give_a_pool_process_its_share(threads_restored: None) -> None:
    """The worker's concurrency, learnt before the pool forks, sets a new process's threads."""
    threads = install()  # one per process: what the test changes goes back after it
    cores, concurrency = threads.cores, threads.concurrency
    threads.cores = 4
    try:
        celeryd_after_setup.send(sender="w@test", instance=SimpleNamespace(concurrency=2), conf={})
        worker_process_init.send(sender=None)
        assert torch.get_num_threads() == 2
        celeryd_after_setup.send(sender="w@test", instance=SimpleNamespace(concurrency=1), conf={})
        worker_process_init.send(sender=None)
        assert torch.get_num_threads() == 4
    finally:
        threads.cores, threads.concurrency = cores, concurrency


def test_the_cores_are_what_torch_would_use_in_the_main_process(threads_restored: None) -> None:
    torch.set_num_threads(3)
    assert ThreadShare().cores == 3
