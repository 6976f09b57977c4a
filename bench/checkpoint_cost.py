"""What checkpoints cost a large model's training: off, Epochal's, and a naive torch.save.

    python bench/checkpoint_cost.py [--width 4096] [--depth 4] [--epochs 3] [--device cpu]

The same run three times, side by side: an MLP (about 55M parameters by default, Adam, so a
checkpoint holds three times the weights) trained with `train_spec` for a few epochs
(1) without checkpoints; (2) with Epochal's checkpoints — at each epoch's end the state is
copied to the CPU on the training thread (the "stall"), then encoded as safetensors and
written (fsync, atomic rename) by a background thread; (3) with a naive synchronous
`torch.save` of the model's and optimizer's state dicts in an epoch-end callback, the baseline.
Printed: seconds per epoch, the whole run, the stalls, the background write, the file size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from core.artifacts import open_artifacts
from core.settings import Settings
from core.spec import JobSpec
from core.training.callbacks import Callback, TrainState
from core.training.checkpointing import CheckpointWriter
from core.training.session import train_spec


class EpochClock(Callback):
    def on_train_begin(self, state: TrainState) -> None:
        self.marks = [time.perf_counter()]

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        self.marks.append(time.perf_counter())

    @property
    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]


class NaiveSave(Callback):
    """The baseline: torch.save of the state dicts, on the training thread, every epoch."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds: list[float] = []

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        started = time.perf_counter()
        torch.save(
            {"model": state.network.state_dict(), "optimizer": state.optimizer.state_dict()},
            self.path,
        )
        self.seconds.append(time.perf_counter() - started)


def spec(width: int, depth: int, epochs: int, device: str) -> JobSpec:
    layers = [{"type": "dense", "units": width, "activation": "relu"} for _ in range(depth)]
    return JobSpec.model_validate(
        {
            "dataset": {"name": "regression", "n_samples": 1024, "features": 1024},
            "model": {"layers": [*layers, {"type": "dense", "units": 1}]},
            "training": {
                "loss": "mean_squared_error",
                "optimizer": {"type": "adam", "learning_rate": 1e-5},
                "batch_size": 128,
                "epochs": epochs,
                "seed": 0,
            },
            "resources": {"device": device},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    settings = Settings(artifacts_dir=folder, max_parameters=10**9)
    job = spec(args.width, args.depth, args.epochs, args.device)
    device = torch.device(args.device)
    artifacts = open_artifacts(settings)  # the folder, or EPOCHAL_ARTIFACTS_URL's bucket
    params = sum(
        (1024 if i == 0 else args.width) * args.width + args.width for i in range(args.depth)
    )
    print(f"MLP of {params / 1e6:.1f}M parameters, Adam, {args.epochs} epochs on {device}")

    rows = []
    for mode in ("off", "epochal", "naive torch.save"):
        clock = EpochClock()
        callbacks: list[Callback] = [clock]
        writer = None
        naive = None
        if mode == "epochal":
            writer = CheckpointWriter(
                prefix="bench",
                attempt=1,
                write=artifacts.write_from,
                delete=artifacts.delete,
                publish=lambda pointers, step, committed: committed(),
            )
        elif mode != "off":
            naive = NaiveSave(folder / "naive.pt")
            callbacks.append(naive)
        started = time.perf_counter()
        train_spec(job, settings, device=device, callbacks=callbacks, checkpoints=writer)
        if writer is not None:
            writer.wait()  # the last checkpoint, which `fit` leaves in flight
        total = time.perf_counter() - started
        stall = write = size = None
        if writer is not None:
            times = writer.times
            stall = statistics.mean(a + b for a, b in zip(times.capture, times.wait, strict=True))
            write, size = statistics.mean(times.write), times.nbytes
        elif naive is not None:
            stall = statistics.mean(naive.seconds)
            size = (folder / "naive.pt").stat().st_size
        rows.append((mode, clock.epochs, total, stall, write, size))

    print(
        f"{'checkpoints':<17} {'s/epoch (each)':<26} {'run (s)':>8} {'stall/ckpt (s)':>15} "
        f"{'bg write/ckpt (s)':>18} {'size (MB)':>10}"
    )
    for mode, epochs, total, stall, write, size in rows:
        each = " ".join(f"{e:.2f}" for e in epochs)
        print(
            f"{mode:<17} {each:<26} {total:>8.2f} {_fmt(stall):>15} {_fmt(write):>18} "
            f"{_fmt(size / 1e6 if size else None, '.0f'):>10}"
        )


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
