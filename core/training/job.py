"""Run one stored job: claim it, train it while streaming to SQL, and record how it ended.

The worker task is a thin wrapper around `run_job`; everything here is testable without Celery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from safetensors.torch import save as save_safetensors
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DivergenceError, SpecError, TrainingCancelled
from core.settings import Settings
from core.spec.job import JobSpec
from core.store import jobs as job_store
from core.store.artifacts import FolderArtifacts
from core.store.metrics import delete_points
from core.store.models import JobStatus
from core.training.callbacks import CancelCheck
from core.training.metrics import best_of
from core.training.session import TrainResult, resolve_device, train_spec
from core.training.sink import StoreSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runner:
    sessions: sessionmaker[Session]
    settings: Settings
    worker: str

    def run(self, job_id: str) -> str | None:
        """Train `job_id` if it is still queued. Returns its final status, or None if not claimed.

        Raises NotFoundError when the job row is not there (yet): the caller may retry.
        """
        with self.sessions.begin() as session:
            device = _device_name(job_store.get_job(session, job_id=job_id).spec)
            job = job_store.claim_job(session, job_id=job_id, worker=self.worker, device=device)
            if job is None:
                return None
            delete_points(session, job_id=job_id)  # a new attempt writes its series afresh
            spec = JobSpec.model_validate(job.spec)
            summary = dict(job.summary)
        log.info("job %s: training on %s (%s)", job_id, device, self.worker)
        status, summary, error = self._train(job_id, spec, summary, device)
        with self.sessions.begin() as session:
            job_store.finish_job(
                session, job_id=job_id, status=status, summary=summary, error=error
            )
        log.info("job %s: %s", job_id, status.value)
        return status.value

    def _train(
        self, job_id: str, spec: JobSpec, summary: dict[str, Any], device: str
    ) -> tuple[JobStatus, dict[str, Any], dict[str, str] | None]:
        sink = StoreSink(
            self.sessions,
            job_id,
            flush_seconds=self.settings.metrics_flush_seconds,
            flush_points=self.settings.metrics_flush_points,
        )
        cancel = CancelCheck(
            lambda: self._cancel_requested(job_id), self.settings.cancel_poll_seconds
        )
        started = time.monotonic()
        try:
            with self._heartbeat(job_id):
                result = train_spec(
                    spec, self.settings, device=resolve_device(device), callbacks=[sink, cancel]
                )
            summary.update(_result_summary(result))
            summary["model"] = self._save_model(job_id, result)
            return JobStatus.SUCCEEDED, _timed(summary, started), None
        except TrainingCancelled as e:
            sink.flush()
            summary["stop_reason"] = str(e)
            return JobStatus.CANCELLED, _timed(summary, started), None
        except DivergenceError as e:
            sink.flush()
            return (
                JobStatus.FAILED,
                _timed(summary, started),
                {"type": "divergence", "message": str(e)},
            )
        except SpecError as e:
            return JobStatus.FAILED, summary, {"type": "invalid_spec", "message": str(e)}
        except Exception as e:
            log.exception("job %s failed", job_id)
            sink.flush(quiet=True)
            return (
                JobStatus.FAILED,
                _timed(summary, started),
                {"type": type(e).__name__, "message": str(e)},
            )

    def _cancel_requested(self, job_id: str) -> bool:
        with self.sessions() as session:
            return job_store.is_cancel_requested(session, job_id=job_id)

    @contextmanager
    def _heartbeat(self, job_id: str) -> Iterator[None]:
        """Keep the job's lease alive from a thread, however long a single step takes."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.job_lease_seconds / 4):
                try:
                    with self.sessions.begin() as session:
                        job_store.touch(session, job_id=job_id)
                except Exception:
                    log.warning("job %s: heartbeat failed", job_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _save_model(self, job_id: str, result: TrainResult) -> dict[str, str]:
        key = f"jobs/{job_id}/model.safetensors"
        tensors = {k: v.detach().cpu().contiguous() for k, v in result.network.state_dict().items()}
        FolderArtifacts(self.settings.artifacts_dir).write(key, save_safetensors(tensors))
        return {"weights": key, "format": "safetensors"}


def _device_name(spec_json: dict[str, Any]) -> str:
    requested = spec_json.get("resources", {}).get("device", "auto")
    return requested if requested == "cuda" else str(resolve_device(requested))


def _result_summary(result: TrainResult) -> dict[str, Any]:
    epochs = result.history.epochs
    return {
        "epochs_run": len(epochs),
        "train_samples": result.train_samples,
        "val_samples": result.val_samples,
        "final": epochs[-1] if epochs else {},
        "best": best_of(epochs),
        "stop_reason": result.history.stop_reason,
    }


def _timed(summary: dict[str, Any], started: float) -> dict[str, Any]:
    return {**summary, "duration_seconds": round(time.monotonic() - started, 3)}
