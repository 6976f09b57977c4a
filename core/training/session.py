"""From a JobSpec to a trained network: data, network, objective and optimizer, then `fit`.

No store here: `train_spec` runs the same in a worker, a test or a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.data import DATASETS, Arrays
from core.data.base import split
from core.nn.layers import activation_module
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec.job import JobSpec
from core.training.callbacks import Callback
from core.training.checkpoint import Snapshot
from core.training.checkpointing import CheckpointWriter
from core.training.keras_callbacks import build_callbacks
from core.training.loop import History, Objective, TensorData, fit
from core.training.losses import LOSSES
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer
from core.training.plan import Encoding, JobPlan, plan_job


@dataclass
class TrainResult:
    network: Network
    history: History
    plan: JobPlan
    train_samples: int
    val_samples: int


def resolve_device(requested: str) -> torch.device:
    """`auto` takes the GPU when there is one; `cuda` without a GPU is an error, not a fallback."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the job asks for device 'cuda' but this worker has no CUDA device")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def to_tensors(
    arrays: Arrays, encoding: Encoding, num_classes: int | None, device: torch.device
) -> TensorData:
    x = torch.from_numpy(np.ascontiguousarray(arrays.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(arrays.y))
    if encoding == "index":
        y = y.long()
    elif encoding == "one_hot":
        y = F.one_hot(y.long(), num_classes).float()
    elif encoding == "binary":
        y = y.float().reshape(-1, 1)
    else:
        y = y.float()
    return TensorData(x.to(device), y.to(device))


def train_spec(
    spec: JobSpec,
    settings: Settings,
    *,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    checkpoints: CheckpointWriter | None = None,
    resume: Snapshot | None = None,
    init_weights: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train `spec`. `resume` continues from a checkpoint of the same spec; `init_weights`
    (fine-tuning) replaces the initialized weights, and the optimizer starts afresh."""
    plan = plan_job(spec, settings)
    seed = spec.training.seed if spec.training.seed is not None else 0
    torch.manual_seed(seed)

    arrays = DATASETS.get(spec.dataset.name).load(spec.dataset)
    train_arrays, val_arrays = split(arrays, spec.dataset.validation_split, spec.dataset.seed)
    k = plan.info.num_classes
    train = to_tensors(train_arrays, plan.encoding, k, device)
    val = to_tensors(val_arrays, plan.encoding, k, device) if val_arrays is not None else None

    network = build_network(spec.model, plan.info.feature_shape)
    network.initialize()
    if init_weights is not None:
        network.load_state_dict(init_weights, strict=True)
    network.to(device)
    objective = Objective(
        loss=LOSSES.get(spec.training.loss.type).make(spec.training.loss.options()),
        use_logits=plan.use_logits,
        metrics={name: METRICS.get(name) for name in spec.training.metrics},
        to_metric_inputs=activation_module(plan.metrics_activation)
        if plan.metrics_activation
        else None,
    )
    batch_size = len(train) if spec.training.batch_size == "full" else spec.training.batch_size
    steps_per_epoch = math.ceil(len(train) / batch_size)
    optimization = build_optimizer(
        network,
        spec.training.optimizer,
        steps_per_epoch=steps_per_epoch,
        epochs=spec.training.epochs,
    )
    history = fit(
        network,
        objective,
        optimization,
        train,
        epochs=spec.training.epochs,
        batch_size=batch_size,
        val=val,
        shuffle=spec.training.shuffle,
        generator=torch.Generator().manual_seed(seed),
        callbacks=[*build_callbacks(spec.training.callbacks), *callbacks],
        checkpoints=checkpoints,
        resume=resume,
    )
    return TrainResult(network, history, plan, len(train), len(val) if val is not None else 0)
