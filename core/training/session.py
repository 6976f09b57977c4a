"""From a JobSpec to a trained network: data, network, objective and optimizer, then `fit`.

No store here: `train_spec` runs the same in a worker, a test or a notebook.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from core.data import Arrays
from core.data.base import cut, split
from core.data.catalog import UploadedDatasets, load, resolve
from core.data.preprocessing import ModelData, fit_scaler
from core.devices import configure, to_device
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec.job import DatasetSpec, JobSpec
from core.training.callbacks import Callback, CancelCheck
from core.training.checkpoint import Snapshot
from core.training.checkpointing import CheckpointWriter
from core.training.keras_callbacks import build_callbacks
from core.training.loop import EVAL_BATCH_MIN, History, Objective, TensorData, evaluate, fit
from core.training.losses import LOSSES
from core.training.lr_finder import (
    FinderResult,
    Record,
    finder_only,
    found_in,
    range_test,
    record_curve,
    resolved_rate,
)
from core.training.metrics import METRICS
from core.training.optimizers import build_optimizer
from core.training.plan import Encoding, JobPlan, plan_job
from core.training.precision import Precision, run_precision
from core.training.preflight import InitialLossCheck
from core.training.threads import step_threads


@dataclass
class TrainResult:
    network: Network
    history: History
    plan: JobPlan
    train_samples: int
    val_samples: int
    model_data: ModelData  # saved with the weights: how to feed the model new data
    test_samples: int = 0
    test: dict[str, float] | None = None  # the loss and metrics on the held-out test part
    threads: int = 0  # the intra-op threads the run trained with (`core.training.threads`)
    # Seconds spent planning (checks, network, optimizer), loading the data, and in `fit`.
    timings: dict[str, float] = field(default_factory=dict)
    lr_finder: dict | None = None  # the range test's result (core/training/lr_finder.py)


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
    return TensorData(to_device(x, device), to_device(y, device))


@dataclass(frozen=True)
class Parts:
    """A data set split for a run, its features scaled with the training part's statistics."""

    train: Arrays
    val: Arrays | None
    test: Arrays | None
    model_data: ModelData


def split_data(spec: DatasetSpec, uploads: UploadedDatasets | None = None) -> Parts:
    """Hold out `test_split` first, then the validation part (a split of the rest, or a
    separate data set); cut what is left to `max_samples`, if set (the one place every data
    set is cut); fit the scaler on what is left to train on, apply it to all three."""
    main = resolve(spec.name, spec, uploads)
    arrays = load(main, spec, uploads)
    test = None
    if spec.test_split > 0:
        arrays, test = split(arrays, spec.test_split, spec.seed)
    separate = None
    if spec.validation is not None:
        val_spec = DatasetSpec(name=spec.validation)  # a built-in with its default options
        separate = resolve(spec.validation, val_spec, uploads)
        train, val = arrays, load(separate, val_spec, uploads)
    else:
        train, val = split(arrays, spec.validation_split, spec.seed)
    if spec.max_samples is not None:
        by_class = main.info.task == "classification"
        train = cut(train, spec.max_samples, spec.seed, by_class=by_class)
    scaler = fit_scaler(spec.preprocessing.features, train.x)
    infos = {r.name: r.info for r in (main, separate) if r is not None and r.uploaded is not None}
    classes = main.uploaded.classes if main.uploaded is not None else None
    table = main.uploaded.table if main.uploaded is not None else None
    model_data = ModelData(scaler, classes, infos, table)
    if scaler is None:
        return Parts(train, val, test, model_data)

    def scaled(a: Arrays | None) -> Arrays | None:
        return None if a is None else Arrays(scaler.apply(a.x), a.y)

    return Parts(Arrays(scaler.apply(train.x), train.y), scaled(val), scaled(test), model_data)


def train_spec(
    spec: JobSpec,
    settings: Settings,
    *,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    checkpoints: CheckpointWriter | None = None,
    resume: Snapshot | None = None,
    init_weights: dict[str, torch.Tensor] | None = None,
    uploads: UploadedDatasets | None = None,
    record: Record | None = None,
    preflight: InitialLossCheck | None = None,
) -> TrainResult:
    """Train `spec`. `resume` continues from a checkpoint of the same spec; `init_weights`
    (fine-tuning) replaces the initialized weights, and the optimizer starts afresh;
    `uploads` resolves data sets named by id. With `training.lr_finder`, the range test runs
    first (or its result comes back from `resume`'s checkpoint) and its curve goes to `record`
    (e.g. the sink's `add`); a spec whose learning rate is a number is the test alone.
    `preflight` checks the first batch's loss against the data's classes
    (core/training/preflight.py) and keeps its warnings."""
    started = time.perf_counter()
    plan = plan_job(spec, settings, uploads)
    precision = run_precision(spec.training.precision, device)  # fp16 on a CPU: refused
    configure(device)
    seed = spec.training.seed if spec.training.seed is not None else 0
    torch.manual_seed(seed)

    planned = time.perf_counter()
    parts = split_data(spec.dataset, uploads)
    k = plan.info.num_classes
    train = to_tensors(parts.train, plan.encoding, k, device)
    val = to_tensors(parts.val, plan.encoding, k, device) if parts.val is not None else None
    loaded = time.perf_counter()
    if preflight is not None:
        preflight.expect(spec.training.loss.type, k, train.y)
        callbacks = [*callbacks, preflight]

    network = build_network(spec.model, plan.info.feature_shape)
    network.initialize()
    if init_weights is not None:
        network.load_state_dict(init_weights, strict=True)
    network.to(device)
    if device.type == "cuda" and network.has_convolutions():
        # Keras's channels-last inputs moved to channels-first are channels_last in memory
        # already (core/nn/layout.py): with the kernels in the same layout, cuDNN runs its
        # NHWC convolutions with no transposes (Tensor Cores under bf16 and fp16).
        network.to(memory_format=torch.channels_last)
    objective = make_objective(spec, plan)
    batch_size = len(train) if spec.training.batch_size == "full" else spec.training.batch_size
    steps_per_epoch = math.ceil(len(train) / batch_size)
    finder: FinderResult | None = None
    if spec.training.lr_finder is not None:
        finder = found_in(resume) or _range_test(
            spec, network, objective, train, batch_size, seed, precision, callbacks
        )
        if record is not None:
            record_curve(finder.curve, record)  # again after a resume: its points were cleared
        if finder_only(spec):
            network.eval()
            return TrainResult(
                network,
                History(),
                plan,
                len(train),
                len(val) if val is not None else 0,
                parts.model_data,
                lr_finder=finder.result,
            )
        spec = resolved_rate(spec, finder.result)
        callbacks = [*callbacks, finder]  # its result rides in the checkpoints
    optimization = build_optimizer(
        network,
        spec.training.optimizer,
        steps_per_epoch=steps_per_epoch,
        epochs=spec.training.epochs,
    )
    fitting = time.perf_counter()
    with step_threads(network, batch_size, device) as threads:
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
            step=spec.training.step,
            precision=precision,
        )
    timings = {
        "plan": planned - started + fitting - loaded,
        "load": loaded - planned,
        "fit": time.perf_counter() - fitting,
    }
    test_metrics = None
    if parts.test is not None:
        test = to_tensors(parts.test, plan.encoding, k, device)
        eval_batch = max(batch_size, EVAL_BATCH_MIN)  # no gradients: larger batches, same result
        test_metrics = evaluate(network, objective, test, eval_batch, precision)
    return TrainResult(
        network,
        history,
        plan,
        len(train),
        len(val) if val is not None else 0,
        parts.model_data,
        len(parts.test) if parts.test is not None else 0,
        test_metrics,
        threads,
        timings,
        finder.result if finder is not None else None,
    )


def _range_test(
    spec: JobSpec,
    network: Network,
    objective: Objective,
    train: TensorData,
    batch_size: int,
    seed: int,
    precision: Precision,
    callbacks: Sequence[Callback],
) -> FinderResult:
    """The learning-rate range test on the run's start, with an optimizer of its own (the
    spec's, its rate set every step); cancellable between its steps."""
    test = spec.training.lr_finder
    assert test is not None
    optimizer = spec.training.optimizer.model_copy(update={"learning_rate": test.min_lr})
    result, curve = range_test(
        network,
        objective,
        build_optimizer(network, optimizer, steps_per_epoch=test.steps, epochs=1),
        train,
        test,
        batch_size=batch_size,
        shuffle=spec.training.shuffle,
        generator=torch.Generator().manual_seed(seed),
        step=spec.training.step,
        precision=precision,
        checks=[cb for cb in callbacks if isinstance(cb, CancelCheck)],
    )
    return FinderResult(result, curve)


def make_objective(spec: JobSpec, plan: JobPlan) -> Objective:
    return Objective(
        loss=LOSSES.get(spec.training.loss.type).make(spec.training.loss.options()),
        use_logits=plan.use_logits,
        metrics={name: METRICS.get(name) for name in spec.training.metrics},
        metrics_activation=plan.metrics_activation,
    )
