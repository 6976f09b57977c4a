"""Where a job's time went, phase by phase: `summary.timings`, in seconds.

A small job's wall time is mostly what surrounds its training (the claim, the data, the
network, checkpoints, the model's files, the store's last writes), so the worker records each
phase: users see the runtime split as a tracker shows it, and `bench/small_jobs.py` adds them
up over a sweep to find the fixed cost per job.

    queued   from the job's message being sent to its claim (the broker and a free worker)
    claim    the claim and the attempt's preparation (the resume plan, old points cleared)
    plan     the spec's checks, the network and its optimizer built
    load     the data set read, split, scaled and turned into tensors
    train    from the first step to the end of the last epoch (validation and epoch-end
             callbacks included): the pure training time
    checkpoints  from the last epoch's end to the end of `fit` (the last checkpoint's copy),
             plus, after the model's save, the wait for that checkpoint's write and for the
             metrics' last write (both ran while the model was saved)
    save     the model's weights and preprocessing written
    finish   the record of the job's end
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from core.training.callbacks import Callback, TrainState

PHASES = ("queued", "claim", "plan", "load", "train", "checkpoints", "save", "finish")


class Timings:
    """The phases of one attempt, as they happen; `phase(name)` ends the previous mark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def queued(self, enqueued_at: datetime | None, started_at: datetime | None) -> None:
        if enqueued_at is not None and started_at is not None:
            self.seconds["queued"] = max(0.0, (started_at - enqueued_at).total_seconds())

    def phase(self, name: str) -> None:
        """`name` ended now: it lasted since the previous mark."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now

    def fitted(self, inside: dict[str, float]) -> None:
        """`train_spec` returned: `inside` has its plan, load and fit seconds; the part of
        `fit` outside the training span (set by PhaseClock) is the checkpoints' phase."""
        for name in ("plan", "load"):
            self.seconds[name] = inside.get(name, 0.0)
        if "fit" in inside and "train" in self.seconds:
            self.seconds["checkpoints"] = max(0.0, inside["fit"] - self.seconds["train"])
        self._mark = time.perf_counter()

    def summary(self) -> dict[str, Any]:
        return {k: round(self.seconds[k], 4) for k in PHASES if k in self.seconds}


class PhaseClock(Callback):
    """Marks training's own span for `Timings`: from the first step to the end of the last
    epoch, then to the end of `fit`. Put before the sink, whose end waits for the store."""

    def __init__(self, timings: Timings):
        self.timings = timings
        self._begin = self._epoch_end = 0.0

    def on_train_begin(self, state: TrainState) -> None:
        self._begin = self._epoch_end = time.perf_counter()

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self._epoch_end = time.perf_counter()

    def on_train_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.timings.seconds["train"] = self._epoch_end - self._begin
