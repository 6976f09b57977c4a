"""`Precision`: what `training.precision` changes in a training step, in one object the loop calls.

- `fp32`: nothing (on CUDA the process allows TF32 matmuls: core/devices.py `configure`).
- `bf16`: the forward pass runs under `torch.autocast(device, torch.bfloat16)`: matmuls and
  convolutions in bfloat16, the weights, gradients and optimizer state stay float32. bfloat16
  has float32's range, so gradients need no scaling. Works on the CPU as on CUDA.
- `fp16`: the same with float16, whose range is small: the loss is multiplied by a
  `torch.amp.GradScaler`'s scale before backward, the gradients are divided back
  (`unscale`) before anything reads them (clipping, weight decay, the diagnostics), and a step
  whose gradients overflowed is skipped, as Keras's LossScaleOptimizer skips it: no update, no
  weight decay, no iteration counted, and the scale backs off. Deciding to skip reads one flag
  on the host: one device sync per step, which bf16 does not pay. CUDA only.

The network's outputs are cast back to float32 as they leave the autocast region, so losses,
metrics and their epoch sums are float32 at every precision; the scaler's state travels with
checkpoints (`state_dict`), so a resumed fp16 run continues with the scale it had.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from core.errors import SpecError, SpecIssue
from core.spec.job import FP16_NEEDS_CUDA

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def run_precision(name: str, device: torch.device) -> Precision:
    """A job's Precision on the device it landed on. fp16 off CUDA is refused (a SpecError,
    before any training), not run in float32 behind the user's back: torch can run it on the
    CPU, but slower than fp32 and to no purpose (`bf16` is the CPU's mixed precision)."""
    if name == "fp16" and device.type != "cuda":
        issue = SpecIssue(
            ("training", "precision"), f"{FP16_NEEDS_CUDA}; this job runs on {device}"
        )
        raise SpecError([issue])
    return Precision(name, device)


class Precision:
    """One run's precision on one device. `Precision()` is fp32: every method a no-op.

    Any precision works on any device here (tests run fp16's scaling on the CPU); which
    combinations a job may use is `run_precision`'s decision."""

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu"):
        device = torch.device(device)
        if name not in ("fp32", *DTYPES):
            raise ValueError(f"precision: expected fp32, bf16 or fp16. Received: {name!r}")
        self.name = name
        self.device_type = device.type
        self.dtype = DTYPES.get(name)
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> Any:
        """The context for the forward pass."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def fp32(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """An output of the autocast region, as float32 (free where it already is)."""
        return t if t is None or self.dtype is None else t.float()

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> bool:
        """Make the gradients true gradients; False where fp16 overflowed: skip this step
        (`update` must still follow)."""
        if self.scaler is None:
            return True
        self.scaler.unscale_(optimizer)
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return True
        norms = torch.stack(torch._foreach_norm(grads))
        return bool(torch.isfinite(norms).all())  # the one host sync of an fp16 step

    def update(self) -> None:
        """After the step (taken or skipped): fp16's scale grows or backs off."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
