"""Where a run starts: a new attempt from its job's `last` checkpoint, from a clone's initial
weights, or from scratch; and a job's checkpoint weights, for downloads and clones. Reads the
artifacts store only; the Runner and the API do the rest."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from core.artifacts import Artifacts
from core.data import DatasetInfo
from core.data.preprocessing import ModelData
from core.errors import ConflictError, NotFoundError, SpecIssue
from core.nn.network import build_network
from core.spec.job import JobSpec
from core.store.models import Job
from core.training.checkpoint import CheckpointError, Snapshot, decode, model_weights

log = logging.getLogger(__name__)


@dataclass
class Start:
    resume: Snapshot | None = None
    resumed_from: dict[str, Any] | None = None  # {epoch, step, attempt} of the checkpoint
    init_weights: dict[str, torch.Tensor] | None = None
    pointers: dict[str, Any] = field(default_factory=dict)  # the job's checkpoints, kept on

    @property
    def after_step(self) -> int | None:
        """Points after this step are written again (None: all of them)."""
        return self.resume.step if self.resume is not None else None


def plan_start(
    artifacts: Artifacts,
    job_id: str,
    checkpoint: dict[str, Any] | None,
    init_from: dict[str, Any] | None,
) -> Start:
    """Resume from `checkpoint["last"]` when it can be read; otherwise start afresh (from the
    clone's initial weights when there are some), keeping no checkpoint pointer."""
    last = (checkpoint or {}).get("last")
    if last is not None:
        try:
            snapshot = decode(artifacts.read(last["key"]))
            if (snapshot.epoch, snapshot.step) != (last["epoch"], last["step"]):
                raise CheckpointError(f"{last['key']} holds epoch {snapshot.epoch}")
            resumed_from = {k: last[k] for k in ("epoch", "step", "attempt")}
            return Start(snapshot, resumed_from, pointers=dict(checkpoint or {}))
        except (OSError, CheckpointError) as e:
            log.warning("job %s: cannot resume from %s (%s); starting afresh", job_id, last, e)
    start = Start(pointers={})
    if init_from is not None:
        start.init_weights = load_safetensors(artifacts.read(init_from["weights"]))
    return start


def checkpoint_weights(job: Job, kind: str, artifacts: Artifacts) -> dict[str, torch.Tensor]:
    """The network weights of a job's `best` or `last` checkpoint."""
    pointer = (job.checkpoint or {}).get(kind)
    if pointer is None:
        hint = " (a model_checkpoint callback keeps one)" if kind == "best" else ""
        raise ConflictError(f"job {job.id} has no {kind} checkpoint{hint}")
    try:
        return model_weights(decode(artifacts.read(pointer["key"])))
    except FileNotFoundError:
        raise NotFoundError(
            f"the {kind} checkpoint of job {job.id} is no longer in the artifacts store"
        ) from None


def weights_issues(
    spec: JobSpec, info: DatasetInfo, tensors: dict[str, torch.Tensor]
) -> list[SpecIssue]:
    """Why `tensors` cannot be the initial weights of `spec`'s network (empty when they can)."""
    with torch.device("meta"):
        expected = {
            k: tuple(v.shape)
            for k, v in build_network(spec.model, info.feature_shape).state_dict().items()
        }
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [
        f"{name}: expected shape {shape}, the weights have {got[name]}"
        for name, shape in expected.items()
        if name in got and got[name] != shape
    ]
    if missing := sorted(expected.keys() - got.keys()):
        problems.append(f"no weights for {', '.join(missing)}")
    if extra := sorted(got.keys() - expected.keys()):
        problems.append(f"weights for no layer of this network: {', '.join(extra)}")
    return [
        SpecIssue(
            ("model", "layers"),
            f"the initial weights do not fit this network: {p}",
            "weights_mismatch",
        )
        for p in problems[:10]
    ]


def checkpoint_bundle(job: Job, kind: str, artifacts: Artifacts) -> bytes:
    """A checkpoint's weights as a download: safetensors with the spec and the checkpoint's
    epoch in the metadata, like the final model's, and its `epochal.preprocessing` (the
    scaler, the class labels, a table's column encoding) once the job has saved it: it is
    fitted with the data and saved with the final model, so a checkpoint of a job that has not
    finished (running, failed, cancelled) has none."""
    pointer = (job.checkpoint or {}).get(kind) or {}
    metadata = {
        "epochal.spec": json.dumps(job.spec),
        "epochal.format": "1",
        "epochal.job_id": job.id,
        "epochal.checkpoint": json.dumps({"kind": kind, **pointer}),
    }
    key = ((job.summary or {}).get("model") or {}).get("preprocessing")
    if key is not None:
        # The same JSON as the final model's (core/serving.py bundle_metadata); should it be
        # missing from the store, the weights alone are still of use.
        with contextlib.suppress(FileNotFoundError):
            data = ModelData.from_json(artifacts.read(key))
            metadata["epochal.preprocessing"] = data.to_json().decode()
    return save_safetensors(checkpoint_weights(job, kind, artifacts), metadata=metadata)
