"""Epochal on a CUDA GPU: every example against the same run on the CPU, and samples/s against a
plain PyTorch loop on the same GPU at each precision.

    python bench/gpu_check.py [--epochs N] [--speed-epochs N] [--repeats R]

1. Speed: the digits MLP and CNN (bench/vs_plain.py's plain models and loop, moved to the GPU,
   the CNN channels-last) against Epochal's session as a worker runs it (`run_epochal`:
   `train_spec` streaming to SQLite through a StoreSink), at fp32, bf16 and fp16 (`training.precision`; autocast in the plain
   loop, with a GradScaler at fp16). Each contender runs once untimed, then R repetitions
   alternate them, the order rotated every repetition; samples/s median [min-max] and the
   final validation accuracy of each.
2. Every example in examples/ (capped at N epochs) trained on CUDA and on the CPU, same seed:
   the final metric of each side and their difference (fp32 runs on CUDA use TF32 matmuls and
   cuDNN's autotuned convolutions, so they differ in the last digits, not in accuracy).

Bounded for one run on an H100 in under 4 minutes with the defaults (progress printed as it
goes). Without CUDA it says so and runs only a short CPU side (two examples for one epoch, and
one repetition of one epoch of the speed comparison at bf16), to show the script works.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from digits_setup import (
    DIGITS_CNN,
    DIGITS_MLP,
    SqliteStore,
    alternate,
    digits_spec,
    load_average,
    spread,
)
from digits_setup import run_epochal as run_worker_side
from vs_plain import digits, plain_cnn, plain_loop, plain_mlp

from core.settings import Settings
from core.spec import JobSpec
from core.training.loop import TensorData
from core.training.precision import DTYPES
from core.training.session import train_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CPU = torch.device("cpu")
QUICK = ("digits_mlp.yaml", "spiral_mlp.json")  # the examples of a run without CUDA
Run = Callable[[], tuple[float, int, float]]  # -> (seconds, samples trained, val accuracy)


def say(text: str = "") -> None:
    print(text, flush=True)


def on(data: TensorData, device: torch.device) -> TensorData:
    return TensorData(data.x.to(device), data.y.to(device))


def contenders(
    layers: list, make_plain: Callable[[], torch.nn.Module], precision: str, epochs: int,
    device: torch.device, store: SqliteStore,
) -> dict[str, Run]:  # fmt: skip
    spec = digits_spec(layers, epochs, precision=precision)
    train, val = (on(part, device) for part in digits(spec))
    dtype = DTYPES.get(precision)

    def plain() -> tuple[float, int, float]:
        torch.manual_seed(0)
        model = make_plain().to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)  # a no-op for the MLP
        t = plain_loop(model, train, val, epochs, spec.training.batch_size, dtype)
        return t.seconds, t.samples, t.accuracy

    def epochal() -> tuple[float, int, float]:
        seconds, result = run_worker_side(spec, store, device)
        return seconds, result.train_samples * epochs, result.history.epochs[-1]["val_accuracy"]

    return {"plain PyTorch": plain, "Epochal": epochal}


def compare(title: str, runs: dict[str, Run], repeats: int) -> dict[str, list[float]]:
    names = list(runs)
    results = alternate(runs, repeats)  # (seconds, samples, accuracy) per run
    rates = {name: [samples / seconds for seconds, samples, _ in results[name]] for name in names}
    accuracy = {name: [acc for _, _, acc in results[name]] for name in names}
    say(f"\n{title}")
    for name in names:
        say(
            f"  {name:<14} {spread(rates[name]):>30} samples/s   "
            f"val accuracy {statistics.median(accuracy[name]):.4f}"
        )
    ratios = [e / p for e, p in zip(rates["Epochal"], rates["plain PyTorch"], strict=True)]
    median = statistics.median(rates["Epochal"]) / statistics.median(rates["plain PyTorch"])
    say(f"  Epochal / plain = {median:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")
    return rates


def speed(
    device: torch.device, precisions: list[str], epochs: int, repeats: int
) -> list[tuple[str, float]]:
    store = SqliteStore()
    results = []
    for name, layers, make_plain in (
        ("digits MLP", DIGITS_MLP, plain_mlp),
        ("digits CNN", DIGITS_CNN, plain_cnn),
    ):
        for precision in precisions:
            runs = contenders(layers, make_plain, precision, epochs, device, store)
            title = f"{name}, {precision}, {epochs} epochs on {device.type}"
            say(f"... {title}: a warm-up and {repeats} repetitions of each")
            rates = compare(title, runs, repeats)
            ratio = statistics.median(rates["Epochal"]) / statistics.median(rates["plain PyTorch"])
            results.append((f"{name} {precision}", ratio))
    return results


def load_example(path: Path) -> dict[str, Any]:
    text = path.read_text()
    return yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)


def final_metric(logs: dict[str, float]) -> tuple[str, float]:
    """The example's headline: validation accuracy where it has one, else its first
    validation series, else the training loss."""
    for name in ("val_accuracy", *sorted(k for k in logs if k.startswith("val_")), "loss"):
        if name in logs:
            return name, logs[name]
    return "loss", math.nan


def run_example(spec: JobSpec, device: torch.device) -> tuple[str, float, float]:
    started = time.perf_counter()
    result = train_spec(spec, Settings(), device=device)
    name, value = final_metric(result.history.epochs[-1])
    return name, value, time.perf_counter() - started


def examples(devices: list[torch.device], epochs: int, only: tuple[str, ...] = ()) -> None:
    paths = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".json"))
    paths = [p for p in paths if not only or p.name in only]
    say(
        f"\nexamples/, {epochs} epoch(s) each, fp32 (as written), on {', '.join(map(str, devices))}"
    )
    for path in paths:
        raw = load_example(path)
        raw["training"]["epochs"] = min(raw["training"].get("epochs", 1), epochs)
        raw.pop("resources", None)  # the device is this script's choice
        spec = JobSpec.model_validate(raw)
        line = f"  {path.name:<32}"
        values = []
        for device in devices:
            metric, value, seconds = run_example(spec, device)
            values.append(value)
            line += f" {device.type} {metric} {value:.4f} ({seconds:.1f} s)"
        if len(values) == 2:
            line += f"   difference {values[0] - values[1]:+.4f}"
        say(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3, help="cap on each example's epochs")
    parser.add_argument("--speed-epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    args = parser.parse_args()
    started = time.perf_counter()
    say(f"torch {torch.__version__}, load average {load_average()}")
    precisions = args.precisions.split(",")
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        say(f"device: {torch.cuda.get_device_name(0)}")
        results = speed(cuda, precisions, args.speed_epochs, args.repeats)
        examples([cuda, CPU], args.epochs)
    else:
        say("no CUDA device: running the CPU side only")
        results = speed(CPU, ["bf16"], 1, 1)  # the autocast paths of both loops; fp16 is CUDA's
        examples([CPU], 1, QUICK)
    say(f"\nload average after: {load_average()}; {time.perf_counter() - started:.0f} s in all")
    for name, ratio in results:
        say(f"{name}: Epochal / plain PyTorch = {ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
