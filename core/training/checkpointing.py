"""`CheckpointWriter`: encodes and writes checkpoints on its own thread, one at a time.

`fit` hands it a `Snapshot` at an epoch's end (already copied to the CPU); the writer encodes
it, writes it to a key of its own (`<prefix>/epoch-<e>.safetensors`, never overwritten), and
only then hands the new pointers (`last`, and `best` when the epoch is the best) to `publish`.
A file is never replaced while a pointer in the store may still name it: the writer deletes its
older files once `publish` has confirmed newer pointers (`committed`). At most one checkpoint
is in flight: handing over the next waits for the previous, so memory holds at most two
snapshots.

When `last` is saved: after every `every_epochs` epochs where that is set; otherwise at the
first epoch end at least `every_seconds` after the previous save (or the writer's start), so
that epochs of milliseconds do not each cost a write — and always after the last epoch (or an
early stop). A `best` epoch between two saves is not written at once: its snapshot (a CPU
copy) is held, replaced by any better epoch, and written just before the next `last`, or by
`finish` when a run stops without one (a cancel). With `every_epochs` set, `best` is written
at once, as every checkpoint was before. Nothing here knows the store: `write`, `delete` and `publish` are given (the Runner
publishes through its metric sink, in the same transaction as the points the checkpoint
covers, so a published checkpoint never points past the stored series).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.logs import ContextThread
from core.training.checkpoint import Snapshot, encode_to

log = logging.getLogger(__name__)

Pointers = dict[str, dict[str, Any]]  # "last" / "best" -> {key, epoch, step, attempt}


@dataclass
class WriteTimes:
    """What checkpointing cost, in seconds: the training thread's stalls, the writer's work."""

    count: int = 0
    capture: list[float] = field(default_factory=list)  # copy to the CPU (training thread)
    wait: list[float] = field(default_factory=list)  # waiting for the previous write
    write: list[float] = field(default_factory=list)  # encode + write (writer thread)
    nbytes: int = 0


class CheckpointWriter:
    def __init__(
        self,
        *,
        prefix: str,
        attempt: int,
        write: Callable[[str, Callable[[Path], None]], int],  # Artifacts.write_from
        delete: Callable[[str], None],
        publish: Callable[[Pointers, int, Callable[[], None]], None],
        every_epochs: int | None = None,
        every_seconds: float = 0.0,
        pointers: Pointers | None = None,
    ):
        self.prefix = prefix  # e.g. jobs/<id>/attempt-<n>/checkpoints
        self.attempt = attempt
        self.write = write
        self.delete = delete
        self.publish = publish
        self.every_epochs = every_epochs
        self.every_seconds = every_seconds
        self._saved_at = time.monotonic()  # the last `last` handed over, or the start
        self._held: Snapshot | None = None  # a `best` epoch's state not yet written
        self.pointers: Pointers = dict(pointers or {})  # a resumed run keeps its `best`
        self._published: Pointers = dict(self.pointers)
        # Handed to `publish` since the last committed: any of them may be being committed.
        self._handed: list[Pointers] = []
        self._written: set[str] = set()  # this writer's files not yet deleted
        self._lock = threading.Lock()
        self.times = WriteTimes()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def due(self, epoch: int, last_epoch: bool) -> bool:
        """Whether `last` is saved after `epoch` (counted from 1)."""
        if last_epoch:
            return True
        if self.every_epochs is not None:
            return epoch % self.every_epochs == 0
        return time.monotonic() - self._saved_at >= self.every_seconds

    def save(self, snapshot: Snapshot, *, last: bool, best: bool) -> None:
        """Start writing `snapshot` in the background, once the previous one is written; a
        `best` that is not `last` waits in memory for the next save when time rules (above)."""
        if best and not last and self.every_epochs is None:
            self._held = snapshot
            return
        writes = [(snapshot, last, best)]
        if self._held is not None and not best:  # a newer best replaces the held one
            writes.insert(0, (self._held, False, True))
        self._held = None
        self._start(writes)
        if last:
            self._saved_at = time.monotonic()

    def finish(self) -> None:
        """Write the held `best`, if any, and wait for every write (a run that stops without a
        last epoch: cancelled, released). The held epoch is newer than `last` (a `last` writes
        the held best first), so it is written as both: the next attempt resumes from it and
        keeps every point up to it, and `best` never names an epoch past `last`."""
        if self._held is not None:
            held, self._held = self._held, None
            self._start([(held, True, True)])
        self.wait()

    def _start(self, writes: list[tuple[Snapshot, bool, bool]]) -> None:
        started = time.perf_counter()
        self.wait()
        self.times.wait.append(time.perf_counter() - started)
        self._thread = ContextThread(
            target=self._run_all, args=(writes,), name="checkpoint-writer", daemon=True
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until the checkpoint in flight is written and handed to `publish`; raise
        the writer's error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run_all(self, writes: list[tuple[Snapshot, bool, bool]]) -> None:
        for snapshot, last, best in writes:
            self._run(snapshot, last, best)
            if self._error is not None:
                return

    def _run(self, snapshot: Snapshot, last: bool, best: bool) -> None:
        try:
            started = time.perf_counter()
            key = f"{self.prefix}/epoch-{snapshot.epoch}.safetensors"
            size = self.write(key, lambda path: encode_to(snapshot, path))
            self._written.add(key)
            pointer = {"key": key, "epoch": snapshot.epoch, "step": snapshot.step}
            pointers = dict(self.pointers)
            for kind, chosen in (("last", last), ("best", best)):
                if chosen:
                    pointers[kind] = {**pointer, "attempt": self.attempt}
            self.pointers = pointers
            with self._lock:
                self._handed.append(pointers)
            self.publish(pointers, snapshot.step, lambda: self._committed(pointers))
            self.collect()
            self.times.write.append(time.perf_counter() - started)
            self.times.count += 1
            self.times.nbytes = size
        except BaseException as e:  # raised on the training thread at its next save
            log.warning("checkpoint of epoch %d failed", snapshot.epoch, exc_info=True)
            self._error = e

    def _committed(self, pointers: Pointers) -> None:
        """Called by the publisher once `pointers` are in the store (from its thread)."""
        with self._lock:
            self._published = pointers
            if any(p is pointers for p in self._handed):  # older ones can no longer commit
                while self._handed[0] is not pointers:
                    self._handed.pop(0)
                self._handed.pop(0)

    def collect(self) -> None:
        """Delete this writer's files that neither the store nor the next publish can name."""
        with self._lock:
            sets = [self._published, self.pointers, *self._handed]
            named = {p["key"] for pointers in sets for p in pointers.values()}
        for key in sorted(self._written - named):
            try:
                self.delete(key)
                self._written.discard(key)
            except Exception:  # a store's own error too: an old file left costs only space
                log.warning("could not delete the old checkpoint %s", key, exc_info=True)
