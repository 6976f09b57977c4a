"""Run one stored job: claim it, train it while streaming to SQL, and record how it ended.

The worker task is a thin wrapper around `Runner.run`; everything here runs without Celery.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from pydantic import ValidationError
from safetensors.torch import save as save_safetensors
from sqlalchemy.orm import Session, sessionmaker

from core import logs
from core.artifacts import Artifacts, open_artifacts
from core.data.cache import ArrayCache
from core.errors import (
    DivergenceError,
    LeaseLost,
    NoSuggestionError,
    SpecError,
    TrainingCancelled,
    TrainingReleased,
)
from core.running.lease import Heartbeat
from core.running.resume import Start, plan_start
from core.running.sink import StoreSink
from core.running.timings import PhaseClock, Timings
from core.series import best_of
from core.settings import Settings
from core.spec.job import JobSpec
from core.store import jobs as job_store
from core.store.datasets import StoreUploads
from core.store.db import is_transient
from core.store.metrics import delete_points
from core.store.models import JobStatus
from core.sweeps.pruning import Pruner, PruningRule, rule_for
from core.sweeps.spec import Health
from core.training.callbacks import Callback, CancelCheck
from core.training.checkpointing import CheckpointWriter
from core.training.diagnostics import Diagnostics
from core.training.health import HealthStop, health_callbacks
from core.training.preflight import InitialLossCheck
from core.training.session import TrainResult, resolve_device, train_spec

log = logging.getLogger(__name__)
T = TypeVar("T")
Outcome = tuple[JobStatus, dict[str, Any], dict[str, str] | None]
RELEASED = "released"  # what `run` returns when the job went back to the queue


@dataclass(frozen=True)
class Attempt:
    job_id: str
    number: int  # the claim's token: every later write names it
    first: bool = False  # the job's first claim ever (a released job's next is not)


@dataclass(frozen=True)
class Runner:
    sessions: sessionmaker[Session]
    settings: Settings
    worker: str

    @logs.own_context  # the job tagged below names every line until `run` returns
    def run(self, job_id: str) -> str | None:
        """Train `job_id` if it is still queued. Returns its final status, RELEASED when the
        worker is stopping and the job went back to the queue (the caller sends it again), or
        None when this process did not (or no longer) hold the job.

        Raises NotFoundError when the job row is not there: the caller may retry.
        """
        timings = Timings()
        with self.sessions.begin() as session:
            job = job_store.get_job(session, job_id=job_id)
            device = _device_name(job.spec)
            first = job.started_at is None  # read before the claim sets it
            claimed = job_store.claim_job(session, job_id=job_id, worker=self.worker, device=device)
            if claimed is None:
                return None
            attempt = Attempt(job_id, claimed.attempts, first)
            timings.queued(claimed.enqueued_at, claimed.started_at)
            logs.tag_job(job_id, attempt.number)
            spec_json, summary = claimed.spec, dict(claimed.summary)
            checkpoint, init_from = claimed.checkpoint, claimed.init_from
            pruning = rule_for(session, job_id=job_id)  # a sweep trial's early termination
        with self._heartbeat(attempt) as lease:
            try:
                return self._attempt(
                    attempt,
                    lease,
                    spec_json,
                    summary,
                    device,
                    checkpoint,
                    init_from,
                    pruning,
                    timings,
                )
            except Exception as e:
                if not is_transient(e):  # a bug, or a store that refuses: fail with the reason
                    self._fail_quietly(attempt, summary, e)
                raise  # the store is away: the lease runs out and a reaper requeues the job

    def _attempt(
        self,
        attempt: Attempt,
        lease: Heartbeat,
        spec_json: dict[str, Any],
        summary: dict[str, Any],
        device: str,
        checkpoint: dict[str, Any] | None,
        init_from: dict[str, Any] | None,
        pruning: PruningRule | None,
        timings: Timings,
    ) -> str | None:
        """The claimed attempt, from its start to the record of how it ended."""
        job_id = attempt.job_id
        try:
            start = plan_start(self.artifacts, job_id, checkpoint, init_from)
            # A resumed run keeps the points up to its checkpoint and writes the rest again.
            # The job's first claim has none to clear: no attempt ever wrote for it.
            if not attempt.first:
                self._retrying(lambda: self._clear_points(job_id, start), f"job {job_id}: points")
        except Exception as e:
            log.exception("job %s: could not prepare attempt %d", job_id, attempt.number)
            error = {"type": type(e).__name__, "message": str(e)}
            self._retrying(
                lambda: self._finish(attempt, JobStatus.FAILED, summary, error), "finish"
            )
            return JobStatus.FAILED.value
        timings.phase("claim")
        summary.pop("resumed_from", None)
        if start.resumed_from is not None:
            summary["resumed_from"] = start.resumed_from
        log.info(
            "job %s: attempt %d on %s (%s)%s",
            job_id,
            attempt.number,
            device,
            self.worker,
            f", resuming after epoch {start.resume.epoch}" if start.resume else "",
        )
        try:
            status, summary, error = self._train(
                attempt, lease, spec_json, summary, device, start, timings, pruning
            )
            timings.phase("finish")
            summary = _finite({**summary, "timings": timings.summary()})
            finished = self._retrying(
                lambda: self._finish(attempt, status, summary, error), f"job {job_id}: finish"
            )
        except LeaseLost:
            log.warning(
                "job %s: attempt %d lost its lease; leaving the job", job_id, attempt.number
            )
            return None
        except TrainingReleased:
            if not self._retrying(lambda: self._release(attempt), f"job {job_id}: release"):
                return None
            log.info("job %s: worker stopping; back in the queue", job_id)
            return RELEASED
        if not finished:
            return None
        log.info("job %s: %s", job_id, status.value)
        return status.value

    def _train(
        self,
        attempt: Attempt,
        lease: Heartbeat,
        spec_json: dict[str, Any],
        summary: dict[str, Any],
        device: str,
        start: Start,
        timings: Timings,
        pruning: PruningRule | None = None,
    ) -> Outcome:
        sink = StoreSink(
            self.sessions,
            attempt.job_id,
            attempt.number,
            flush_seconds=self.settings.metrics_flush_seconds,
            flush_points=self.settings.metrics_flush_points,
            outage_seconds=self.settings.store_outage_seconds,
        )
        cancel = CancelCheck(lease.check)  # flags the heartbeat thread reads, no query
        writer = CheckpointWriter(
            prefix=f"jobs/{attempt.job_id}/attempt-{attempt.number}/checkpoints",
            attempt=attempt.number,
            write=self.artifacts.write_from,
            delete=self.artifacts.delete,
            publish=sink.publish_checkpoint,
            every_epochs=self.settings.checkpoint_every_epochs,
            every_seconds=self.settings.checkpoint_seconds,
            pointers=start.pointers,
        )
        started = time.monotonic()
        diagnostics: Diagnostics | None = None
        health: HealthStop | None = None
        preflight = InitialLossCheck()
        # A sweep's health rule stops the trial from within (its HealthStop), not from the points.
        prune_on_health = pruning.rule if pruning and isinstance(pruning.rule, Health) else None
        pruner = (
            Pruner(pruning, self.sessions, attempt.job_id, sink.sync)
            if pruning and prune_on_health is None
            else None
        )
        try:
            spec = JobSpec.model_validate(spec_json)
            # The clock first: its end is training's, before the sink waits for the store.
            callbacks: list[Callback] = [PhaseClock(timings), sink, cancel]
            if pruner is not None:
                callbacks.append(pruner)  # after the sink, which buffers the epoch's points
            diagnostics, health = health_callbacks(
                spec.training, sink.add, prune_on_health.stop_on() if prune_on_health else None
            )
            if diagnostics is not None:
                callbacks.insert(2, diagnostics)
            if health is not None:
                callbacks.append(health)
            uploads = StoreUploads(self.sessions, self.artifacts, cache=self.datasets)
            result = train_spec(
                spec,
                self.settings,
                device=resolve_device(device),
                callbacks=callbacks,
                checkpoints=writer,
                resume=start.resume,
                init_weights=start.init_weights,
                uploads=uploads,
                record=sink.add,  # the learning-rate finder's curve
                preflight=preflight,
            )
            timings.fitted(result.timings)
            summary.update(_result_summary(result), **_warnings(diagnostics, preflight))
            if health is not None and health.stopped_on is not None:
                summary["stopped_on"] = health.stopped_on
            # The last checkpoint and the sink's last write (handed over at the end of
            # training) run meanwhile.
            summary["model"] = self._save_model(attempt, result)
            timings.phase("save")
            writer.wait()  # the last checkpoint (written meanwhile), handed to the sink
            sink.close()  # every point and the last checkpoint's pointers are stored
            writer.collect()  # older checkpoint files, now that no pointer names them
            timings.phase("checkpoints")
            summary["checkpoints"] = _checkpoint_summary(writer)
            if pruner is not None and pruner.pruned is not None:
                summary["pruned"] = pruner.pruned
                return JobStatus.PRUNED, _timed(summary, started), None
            if health is not None and health.pruned and health.stopped_on is not None:
                summary["pruned"] = {
                    "epoch": health.stopped_on["epoch"],
                    "rule": "health",
                    "reason": result.history.stop_reason,
                }
                return JobStatus.PRUNED, _timed(summary, started), None
            return JobStatus.SUCCEEDED, _timed(summary, started), None
        except TrainingCancelled as e:
            _settle(writer)  # its last checkpoint stays resumable
            sink.close()
            summary.update(stop_reason=str(e), **_warnings(diagnostics, preflight))
            return JobStatus.CANCELLED, _timed(summary, started), None
        except DivergenceError as e:
            _settle(writer)
            sink.close()
            # an exploding-gradient or initial-loss warning explains it
            summary.update(_warnings(diagnostics, preflight))
            if health is not None and health.stopped_on is not None:  # stop_on: divergence
                summary.update(stopped_on=health.stopped_on, stop_reason=health.reason)
            error = {"type": "divergence", "message": str(e)}
            return JobStatus.FAILED, _timed(summary, started), error
        except NoSuggestionError as e:
            _settle(writer)
            sink.close()  # the test's curve is kept: it shows why
            summary["lr_finder"] = e.result
            error = {"type": e.code, "message": str(e)}
            return JobStatus.FAILED, _timed(summary, started), error
        except (SpecError, ValidationError) as e:
            return JobStatus.FAILED, summary, {"type": "invalid_spec", "message": str(e)}
        except TrainingReleased:
            _settle(writer)  # the next attempt resumes from the latest checkpoint
            _close_quietly(sink)
            raise
        except LeaseLost:
            _settle(writer, held=False)  # nothing this attempt writes can be published now
            sink.abandon()  # the points are no longer this attempt's to write
            raise
        except Exception as e:
            log.exception("job %s failed", attempt.job_id)
            _settle(writer)
            _close_quietly(sink)
            error = {"type": type(e).__name__, "message": str(e)}
            return JobStatus.FAILED, _timed(summary, started), error
        finally:
            sink.abandon()  # the writer thread ends on every path (a no-op once closed)

    @cached_property
    def artifacts(self) -> Artifacts:
        """One store per Runner. Its writes (checkpoints, the final model) keep trying through
        an object store's outage for EPOCHAL_ARTIFACTS_RETRY_SECONDS before they fail."""
        return open_artifacts(self.settings, patience=self.settings.artifacts_retry_seconds)

    @cached_property
    def datasets(self) -> ArrayCache:
        """This process's recently used uploaded data sets, shared by its jobs."""
        return ArrayCache(self.settings.dataset_cache_bytes)

    def _clear_points(self, job_id: str, start: Start) -> None:
        with self.sessions.begin() as session:
            delete_points(session, job_id=job_id, after_step=start.after_step)

    def _finish(
        self, attempt: Attempt, status: JobStatus, summary: dict, error: dict | None
    ) -> bool:
        with self.sessions.begin() as session:
            return job_store.finish_job(
                session,
                job_id=attempt.job_id,
                attempt=attempt.number,
                status=status,
                summary=summary,
                error=error,
            )

    def _release(self, attempt: Attempt) -> bool:
        with self.sessions.begin() as session:
            return job_store.release_job(session, job_id=attempt.job_id, attempt=attempt.number)

    def _retrying(self, action: Callable[[], T], what: str) -> T:
        """Retry `action` on transient store errors for as long as a store outage is borne."""
        deadline = time.monotonic() + self.settings.store_outage_seconds
        delay = 0.5
        while True:
            try:
                return action()
            except Exception as e:
                if not is_transient(e) or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: store unreachable, retrying in %.1fs", what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _fail_quietly(self, attempt: Attempt, summary: dict, error: Exception) -> None:
        """Record an unexpected error as the job's failure, if the store lets us."""
        log.exception("job %s: attempt %d failed unexpectedly", attempt.job_id, attempt.number)
        reason = {"type": type(error).__name__, "message": str(error)}
        try:
            self._finish(attempt, JobStatus.FAILED, summary, reason)
        except Exception:
            log.warning("job %s: could not record its failure", attempt.job_id, exc_info=True)

    @contextmanager
    def _heartbeat(self, attempt: Attempt) -> Iterator[Heartbeat]:
        """Keep the job's lease alive from a thread, from the claim until the attempt's end
        is written, however long a single step takes (core.running.lease)."""
        lease = Heartbeat(
            self.sessions, attempt.job_id, attempt.number, self.settings.heartbeat_seconds
        ).start()
        try:
            yield lease
        finally:
            lease.stop()

    def _save_model(self, attempt: Attempt, result: TrainResult) -> dict[str, str]:
        # Keyed by attempt: a worker that lost its lease can never overwrite the winner's file.
        folder = f"jobs/{attempt.job_id}/attempt-{attempt.number}"
        state = result.network.state_dict()
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        # The attempt's heartbeat goes on meanwhile: a write may wait out an object store's
        # outage longer than a lease.
        self.artifacts.write(f"{folder}/model.safetensors", save_safetensors(tensors))
        # Scaler statistics, class labels, uploaded data sets' shapes: what predict and
        # evaluate need besides the weights.
        self.artifacts.write(f"{folder}/preprocessing.json", result.model_data.to_json())
        return {
            "weights": f"{folder}/model.safetensors",
            "format": "safetensors",
            "preprocessing": f"{folder}/preprocessing.json",
        }


def _warnings(diagnostics: Diagnostics | None, preflight: InitialLossCheck) -> dict[str, Any]:
    """The diagnostics' warnings and the pre-flight's, one list; absent when neither ran or
    found anything."""
    found = [*preflight.warnings, *(diagnostics.warnings if diagnostics else [])]
    return {"diagnostics": {"warnings": found}} if diagnostics is not None or found else {}


def _finite(value: Any) -> Any:
    """`value` with each NaN or infinite float as None: JSON has no such numbers (a run stopped
    on a non-finite loss ends with one in its last epoch's logs; its stop_reason names it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _settle(writer: CheckpointWriter, *, held: bool = True) -> None:
    """Wait for the checkpoint in flight, and with `held` write the held `best` first (as the
    next attempt's `last` too); a failed one only costs the resume some epochs."""
    try:
        writer.finish() if held else writer.wait()
    except Exception:
        log.warning("a checkpoint could not be written", exc_info=True)


def _checkpoint_summary(writer: CheckpointWriter) -> dict[str, Any]:
    times = writer.times
    return {
        "written": times.count,
        "bytes": times.nbytes,
        "stall_seconds": round(sum(times.capture) + sum(times.wait), 3),
        "write_seconds": round(sum(times.write), 3),
    }


def _close_quietly(sink: StoreSink) -> None:
    """Write what can still be written of a failed run; the failure itself is what matters."""
    try:
        sink.close()
    except Exception:
        log.warning("job %s: could not write its last metrics", sink.job_id, exc_info=True)


def _device_name(spec_json: dict[str, Any]) -> str:
    requested = spec_json.get("resources", {}).get("device", "auto")
    return (
        requested
        if requested == "cuda"
        else str(resolve_device("cpu" if requested == "cpu" else "auto"))
    )


def _result_summary(result: TrainResult) -> dict[str, Any]:
    epochs = result.history.epochs
    return {
        "epochs_run": len(epochs),
        "train_samples": result.train_samples,
        "val_samples": result.val_samples,
        **({"test_samples": result.test_samples, "test": result.test} if result.test else {}),
        "final": epochs[-1] if epochs else {},
        "best": best_of(epochs),
        "stop_reason": result.history.stop_reason,
        "threads": result.threads,
        **({"lr_finder": result.lr_finder} if result.lr_finder is not None else {}),
    }


def _timed(summary: dict[str, Any], started: float) -> dict[str, Any]:
    return {**summary, "duration_seconds": round(time.monotonic() - started, 3)}
