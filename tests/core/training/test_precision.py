"""`training.precision`: bf16 autocast on the CPU, fp16's loss scaling (run here on the CPU,
where torch supports it, though a job may not ask for it), the scaler's state across a
checkpoint, and the spec's checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from core.errors import SpecError
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.spec.optimizers import Adam
from core.training.callbacks import Callback, TrainState
from core.training.checkpoint import Snapshot, capture, decode, encode
from core.training.loop import History, Objective, TensorData, fit
from core.training.metrics import METRICS
from core.training.optimizers import ITERATIONS, build_optimizer
from core.training.precision import Precision, run_precision
from core.training.session import train_spec

LAYERS = [
    {"type": "dense", "units": 16, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 3, "activation": "softmax"},
]
OBJECTIVE = Objective(
    loss=lambda logits, y: F.cross_entropy(logits, y),
    use_logits=True,
    metrics={"accuracy": METRICS.get("accuracy")},
)


def data() -> tuple[TensorData, TensorData]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 5, generator=g)
    y = (x[:, :3] * torch.tensor([1.0, 2.0, -1.5])).argmax(-1)
    return TensorData(x[:128], y[:128]), TensorData(x[128:], y[128:])


def network() -> Network:
    torch.manual_seed(0)
    net = build_network(ModelSpec.model_validate({"layers": LAYERS}), (5,))
    net.initialize()
    return net


class Capture(Callback):
    """Keeps a snapshot of the run at the end of epoch `at`, as `fit`'s checkpoints take it."""

    def __init__(self, at: int, generator: torch.Generator):
        self.at, self.generator = at, generator
        self.snapshot: Snapshot | None = None

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        if state.epoch == self.at:
            self.snapshot = capture(state, generator=self.generator, callbacks=[self], history=[])


def train(
    precision: Precision, epochs: int = 4, resume: Snapshot | None = None, capture_at: int = 0
) -> tuple[Network, History, Capture, torch.optim.Optimizer]:
    net = network()
    train_data, val = data()
    optimization = build_optimizer(
        net, Adam(type="adam", learning_rate=0.01), steps_per_epoch=8, epochs=epochs
    )
    generator = torch.Generator().manual_seed(1)
    capturer = Capture(capture_at, generator)
    history = fit(
        net,
        OBJECTIVE,
        optimization,
        train_data,
        epochs=epochs,
        batch_size=16,
        val=val,
        generator=generator,
        callbacks=[capturer],
        resume=resume,
        precision=precision,
    )
    return net, history, capturer, optimization.optimizer


def test_bf16_trains_on_the_cpu_with_float32_weights_and_logs() -> None:
    net, history, _, _ = train(Precision("bf16"))
    first, last = history.epochs[0], history.epochs[-1]
    assert all(math.isfinite(v) for v in last.values())
    assert last["loss"] < first["loss"]
    assert all(p.dtype == torch.float32 for p in net.parameters())
    _fp32_net, fp32_history, _, _ = train(Precision("fp32"))
    # The same run at another precision: close, not equal (the matmuls ran in bfloat16).
    assert last["loss"] != fp32_history.epochs[-1]["loss"]
    assert last["loss"] == pytest.approx(fp32_history.epochs[-1]["loss"], rel=0.05)


def test_the_forward_pass_runs_in_bf16_and_leaves_it_as_float32() -> None:
    net, precision = network(), Precision("bf16")
    x = torch.randn(4, 5)
    with precision.autocast():
        logits = net.logits(x)
    assert logits.dtype == torch.bfloat16
    assert precision.fp32(logits).dtype == torch.float32
    assert Precision().fp32(x) is x  # fp32: no copy


def test_fp16_scales_the_loss_and_skips_a_step_whose_gradients_overflow() -> None:
    """An initial scale beyond float16's range overflows the first steps: they are skipped
    (no update, no iteration counted) and the scale backs off until steps go through."""
    precision = overflowing("fp16")
    assert precision.scaler is not None
    _net, history, _, optimizer = train(precision, epochs=1)
    assert math.isfinite(history.epochs[-1]["loss"])
    skipped = 8 - optimizer.param_groups[0][ITERATIONS]  # 8 steps in the epoch
    assert 0 < skipped < 8
    assert precision.scaler.get_scale() == 2.0 ** (24 - skipped)


def overflowing(name: str) -> Precision:
    """`name`, with fp16's first steps overflowing (a scale beyond float16's range for this
    network's gradients), so that its scale has moved by the time a checkpoint is taken."""
    precision = Precision(name)
    if name == "fp16":
        precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24)
    return precision


def test_a_resumed_run_equals_the_uninterrupted_one_at_bf16_and_fp16() -> None:
    for name in ("bf16", "fp16"):
        whole, whole_history, capturer, _ = train(overflowing(name), capture_at=2)
        assert capturer.snapshot is not None
        snapshot = decode(encode(capturer.snapshot))
        # A fresh scaler would start at 2**24 again and skip steps the whole run did not.
        resumed, resumed_history, _, _ = train(overflowing(name), resume=snapshot)
        for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
        assert resumed_history.epochs == whole_history.epochs[2:]  # (captured without history)


def test_the_fp16_scale_comes_back_from_a_checkpoint() -> None:
    precision = overflowing("fp16")
    _, _, capturer, _ = train(precision, epochs=1, capture_at=1)
    assert capturer.snapshot is not None
    saved = capturer.snapshot.meta["scaler"]
    assert saved["scale"] < 2.0**24  # it backed off during the epoch
    fresh = Precision("fp16")
    fresh.load_state_dict(decode(encode(capturer.snapshot)).meta["scaler"])
    assert fresh.state_dict() == saved
    assert Precision("bf16").state_dict() == {}


def spec(precision: str, device: str = "auto") -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "moons", "n_samples": 200},
            "model": {"layers": [*LAYERS[:1], {"type": "dense", "units": 2}]},
            "training": {
                "loss": {"type": "sparse_categorical_crossentropy", "from_logits": True},
                "precision": precision,
                "epochs": 1,
            },
            "resources": {"device": device},
        }
    )


def test_the_spec_takes_a_precision_fp32_by_default() -> None:
    assert spec("bf16").training.precision == "bf16"
    raw = spec("fp32").model_dump()
    del raw["training"]["precision"]
    assert JobSpec.model_validate(raw).training.precision == "fp32"
    with pytest.raises(ValidationError, match="precision"):
        spec("fp8")


def test_fp16_on_the_cpu_is_refused_at_submission_and_before_training() -> None:
    with pytest.raises(ValidationError, match="fp16 needs a CUDA device"):
        spec("fp16", device="cpu")
    job = spec("fp16")  # auto: a GPU worker would take it
    with pytest.raises(SpecError, match="fp16 needs a CUDA device") as e:
        train_spec(job, Settings(), device=torch.device("cpu"))
    assert e.value.issues[0].loc == ("training", "precision")
    with pytest.raises(SpecError):
        run_precision("fp16", torch.device("cpu"))
    assert run_precision("bf16", torch.device("cpu")).dtype == torch.bfloat16


def test_a_bf16_job_trains_through_train_spec() -> None:
    result = train_spec(spec("bf16"), Settings(), device=torch.device("cpu"))
    assert math.isfinite(result.history.epochs[-1]["loss"])
