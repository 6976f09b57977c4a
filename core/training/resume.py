"""Where a new attempt starts: from its job's `last` checkpoint, from a clone's initial
weights, or from scratch. Reads the artifacts store only; the Runner does the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as load_safetensors

from core.store.artifacts import Artifacts
from core.training.checkpoint import CheckpointError, Snapshot, decode

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
