"""Epochal's training loop against a plain PyTorch loop: same model, data and batch size.

    python bench/train_overhead.py [--epochs N] [--repeats R]

Epochal's side is the real thing a worker runs — `train_spec` with per-step losses and
per-epoch metrics streamed to a SQLite store (`StoreSink`), diagnostics off. The plain side is
a hand-written loop over pre-built tensors (index slicing, no DataLoader) that tracks what any
training script reports — the epoch's training loss and accuracy, and a validation pass —
accumulated on the device with one sync per epoch. Both train the same architecture with the
same optimizer; the figure is samples/second over the epochs (setup excluded), best of R
alternating runs, and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from digits_setup import DIGITS_MLP, Clock, digits_spec

import migrations
from core.data import DATASETS
from core.data.base import split
from core.nn.network import build_network
from core.running.sink import StoreSink
from core.settings import Settings
from core.spec import JobSpec
from core.store import jobs
from core.store.db import session_factory
from core.training.session import train_spec

CNN = [
    {"type": "reshape", "target_shape": [8, 8, 1]},
    {
        "type": "conv2d",
        "filters": 32,
        "kernel_size": 3,
        "padding": "same",
        "kernel_initializer": "he_uniform",
    },
    {"type": "batch_normalization"},
    {"type": "activation", "activation": "relu"},
    {"type": "max_pooling2d", "pool_size": 2},
    {"type": "dropout", "rate": 0.25},
    {"type": "flatten"},
    {"type": "dense", "units": 10, "activation": "softmax"},
]


def epochal(spec: JobSpec, url: str, settings: Settings) -> tuple[float, int]:
    sessions = session_factory(url)
    with sessions.begin() as s:
        job = jobs.create_job(s, spec={}, name="bench", tags=[], queue="cpu", summary={}, epochs=1)
        jobs.claim_job(s, job_id=job.id, worker="bench", device="cpu")
    sink = StoreSink(sessions, job.id, 1, flush_seconds=1.0, flush_points=1000, outage_seconds=60)
    clock = Clock()
    result = train_spec(spec, settings, device=torch.device("cpu"), callbacks=[sink, clock])
    return clock.seconds, result.train_samples


def plain(spec: JobSpec) -> tuple[float, int]:
    """What a PyTorch user writes by hand: tensors built once, index slicing, one loss."""
    torch.manual_seed(0)
    arrays = DATASETS.get("digits").load(spec.dataset)
    train, val = split(arrays, spec.dataset.validation_split, spec.dataset.seed)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    model = build_network(spec.model, (64,))
    model.initialize()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    n, bs = len(x), spec.training.batch_size
    started = time.perf_counter()
    for _ in range(spec.training.epochs):
        model.train()
        order = torch.randperm(n)
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for i in range(0, n, bs):
            index = order[i : i + bs]
            logits = model.logits(x[index])
            loss = F.cross_entropy(logits, y[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(index)
            correct += (logits.detach().argmax(-1) == y[index]).sum()
        model.eval()
        with torch.no_grad():  # the same per-epoch validation pass Epochal makes
            val_logits = model.logits(torch.from_numpy(val.x))
            val_loss = F.cross_entropy(val_logits, torch.from_numpy(val.y))
        torch.stack([loss_sum / n, correct / n, val_loss]).tolist()
    return time.perf_counter() - started, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'bench.db'}"
    migrations.upgrade(url)
    settings = Settings(database_url=url, artifacts_dir=folder)
    print(
        f"{'model':<6} {'plain PyTorch (samples/s)':>26} {'Epochal (samples/s)':>20} {'ratio':>7}"
    )
    for name, layers in (("MLP", DIGITS_MLP), ("CNN", CNN)):
        spec = digits_spec(layers, args.epochs)
        best_plain = best_epochal = 0.0
        for _ in range(args.repeats):  # alternate, so machine noise hits both alike
            seconds, n = plain(spec)
            best_plain = max(best_plain, n * args.epochs / seconds)
            seconds, n = epochal(spec, url, settings)
            best_epochal = max(best_epochal, n * args.epochs / seconds)
        print(
            f"{name:<6} {best_plain:>26,.0f} {best_epochal:>20,.0f} {best_epochal / best_plain:>7.2f}"
        )


if __name__ == "__main__":
    main()
