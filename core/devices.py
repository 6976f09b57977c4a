"""What a process can train on: the CPU, or CUDA GPUs (their name and memory), or Apple's MPS.

`probe()` asks torch in a fresh interpreter: asking CUDA in a process that later forks (a
Celery prefork worker's main process) would leave its children unable to use the GPU.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]  # where `core` can be imported from


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # cpu, cuda or mps
    gpu_name: str | None = None  # the first GPU's
    gpu_memory_bytes: int | None = None
    gpu_count: int = 0


def describe() -> DeviceInfo:
    """This process's best device (initializes CUDA when there is one)."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo("cuda", props.name, int(props.total_memory), torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return DeviceInfo("mps")
    return DeviceInfo("cpu")


def probe(timeout: float = 120.0) -> DeviceInfo:
    """`describe()` run in a child interpreter, so this process never touches CUDA itself.
    A child that fails or hangs reads as the CPU (and is logged)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "import core.devices as d; d.main()"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            env={**os.environ, "PYTHONPATH": path},
        )
        return DeviceInfo(**json.loads(result.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, TypeError) as e:
        log.warning("could not tell this machine's device (%s); reporting the CPU", e)
        return DeviceInfo("cpu")


def configure(device: torch.device) -> None:
    """Process-wide backend settings for training on `device`; nothing on the CPU.

    On CUDA: cuDNN's autotuner (`cudnn.benchmark`: every job's shapes are fixed, so the first
    batches pick the fastest convolution algorithms for the rest), and float32 matmuls in
    TF32 (`set_float32_matmul_precision("high")`, 10-bit mantissa inputs, float32 sums), as
    TensorFlow and so Keras do by default on Ampere and later; convolutions already are.
    Both make fp32 runs on a GPU differ from the CPU's in the last digits, not in accuracy."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`: to a GPU from pinned host memory without blocking, so the copy
    overlaps with what the host does next (the caller's later kernels queue behind it)."""
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def main() -> None:
    print(json.dumps(asdict(describe())))
