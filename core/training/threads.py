"""How many intra-op threads a run's steps use: fewer where the work per step is small.

Splitting a small matrix product across threads costs more in hand-offs than it saves: a plain
PyTorch loop on the digits MLP (64-128-10, batches of 64, about 10 MFLOP a step) made 161,919
samples/s on one thread and 128,192 on two (bench/vs_sklearn.py, median of 7, quiet 2-core
machine). Each thread is
given at least `FLOPS_PER_THREAD` of a step's work, and a run never takes more threads than
the process has (`torch.get_num_threads()`, which a worker sets to its share of the cores);
the process's setting is restored when the run ends (one run at a time per process, as a
worker's pool process runs them: the setting is the process's). Only networks whose cost is their dense layers are
counted; for any other the process's setting stands. `bench/step_threads.py` measures where a
second thread starts to pay.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from core.nn.layers.wrappers import TimeDistributed

# Work per step (forward and backward) that one more thread must get to pay for itself:
# indicative, from the figures above and bench/step_threads.py; rerun it on the target machine.
FLOPS_PER_THREAD = 50e6


def dense_step_flops(network: nn.Module, batch_size: int) -> float | None:
    """Twice the multiply-adds of a step's forward and backward (3 matrix products per dense
    layer), or None where the network has weights other than dense layers and 1-D scales and
    shifts, or runs a dense layer per time step."""
    total = 0.0
    for module in network.modules():
        own = list(module.parameters(recurse=False))
        if isinstance(module, TimeDistributed):
            return None  # its dense layer runs once per time step: not counted here
        if isinstance(module, nn.Linear):
            total += 6.0 * batch_size * module.in_features * module.out_features
        elif any(p.dim() > 1 for p in own):
            return None  # convolutions, recurrent layers, embeddings: not counted here
    return total


def threads_for(flops: float | None, available: int) -> int:
    if flops is None:
        return available
    return max(1, min(available, int(flops // FLOPS_PER_THREAD)))


@contextmanager
def step_threads(network: nn.Module, batch_size: int, device: torch.device) -> Iterator[int]:
    """Run the block with the threads `threads_for` picks (on the CPU), then restore the
    process's setting. Yields the number of threads."""
    available = torch.get_num_threads()
    if device.type != "cpu":
        yield available
        return
    chosen = threads_for(dense_step_flops(network, batch_size), available)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(available)
