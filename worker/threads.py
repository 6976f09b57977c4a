"""Each pool process's share of the machine's cores, as torch's thread count.

A worker started with `--concurrency N` trains up to N jobs at once, one per pool process.
Left alone, each process's torch would use every core, so N jobs would run N x cores threads
on the same cores, and OpenMP threads that wait for each other on a busy machine cost more
than they compute (a small job slows down tenfold). Each pool process gets `cores // N`
threads (at least 1) as it starts, before its first job; a run may use fewer, never more.
`cores` is what torch would use in the worker's main process (OMP_NUM_THREADS, or the
machine's cores).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import torch
from celery.signals import celeryd_after_setup, worker_process_init

log = logging.getLogger(__name__)


def share(cores: int, concurrency: int) -> int:
    """Threads for each of `concurrency` processes on `cores` threads' worth of machine."""
    return max(1, cores // max(1, concurrency))


class ThreadShare:
    """Learns the worker's concurrency in the main process (before its pool forks) and sets
    each pool process's thread count as it starts."""

    def __init__(self) -> None:
        self.cores = torch.get_num_threads()
        self.concurrency = 1

    def configured(self, instance: Any = None, **_: Any) -> None:
        self.concurrency = int(getattr(instance, "concurrency", None) or 1)

    def process_started(self, **_: Any) -> None:
        threads = share(self.cores, self.concurrency)
        torch.set_num_threads(threads)
        log.debug("pool process: %d torch thread(s) of %d", threads, self.cores)


@cache
def install() -> ThreadShare:
    """Connects once per process (each app a test builds would add its own handlers)."""
    threads = ThreadShare()
    celeryd_after_setup.connect(threads.configured, weak=False)
    worker_process_init.connect(threads.process_started, weak=False)
    return threads
