"""The JobSpec: what a user submits, and what is stored (normalized, defaults filled in)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from core.data import DATASETS
from core.data.catalog import is_upload_id
from core.spec.base import Spec
from core.spec.callbacks import CallbackSpec
from core.spec.diagnostics import DiagnosticsSpec, StopOn
from core.spec.layers import LayerSpec
from core.spec.losses import LossSpec
from core.spec.lr_finder import LrFinder
from core.spec.metrics import MetricName
from core.spec.optimizers import OptimizerSpec

# Mixed precision: "bf16" and "fp16" run the forward pass under torch.autocast; fp16 scales the
# loss (a GradScaler) and so needs a CUDA device. Defined once here; core/training/precision.py
# maps the names to dtypes.
PrecisionName = Literal["fp32", "bf16", "fp16"]
FP16_NEEDS_CUDA = (
    'fp16 needs a CUDA device (its loss scaling is for GPUs); use "bf16" or "fp32" on the CPU'
)

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]


def _batch_size(value: Any) -> int | str:
    if value == "full" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ValueError(f'expected a positive integer or "full"; received batch_size={value!r}')


BatchSize = Annotated[
    int | Literal["full"],
    PlainValidator(_batch_size),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"const": "full"}]}),
]


def _dataset_name(name: str) -> str:
    """A built-in name (Keras spelling accepted), or an uploaded data set's id, left for the
    planner to look up: the spec itself never reads the store."""
    return name if is_upload_id(name) else DATASETS.canonical(name)


DatasetName = Annotated[str, AfterValidator(_dataset_name)]


class PreprocessingSpec(Spec):
    features: Literal["none", "standardize", "min_max"] = Field(
        "none",
        description="scale the inputs with statistics of the training part (per feature, or "
        "per channel for images), saved with the model and applied by predict and evaluate",
    )
    targets: Literal["none", "one_hot"] = Field(
        "none",
        description="one_hot: feed class labels one-hot encoded (needs a loss that takes them, "
        "e.g. categorical_crossentropy); none: as the loss takes them",
    )


class DatasetSpec(Spec):
    name: DatasetName = Field(
        description="a built-in data set or an uploaded one's id (GET /v1/datasets lists them)"
    )
    validation_split: float = Field(0.0, ge=0.0, lt=1.0, description="fraction held out")
    validation: DatasetName | None = Field(
        None, description="a separate validation data set, instead of validation_split"
    )
    test_split: float = Field(
        0.0, ge=0.0, lt=1.0, description="fraction held out first, evaluated once at the end"
    )
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)
    seed: int = Field(0, ge=0, description="generation and split seed, fixed across model seeds")
    n_samples: int | None = Field(None, ge=10, description="synthetic sets: how many samples")
    noise: float | None = Field(None, ge=0.0, le=10.0, description="synthetic sets: noise level")
    classes: int | None = Field(None, ge=2, le=100, description="spiral: number of arms")
    features: int | None = Field(None, ge=1, le=10_000, description="regression: input size")
    steps: int | None = Field(None, ge=1, le=10_000, description="sequence sets: time steps")
    max_samples: int | None = Field(
        None,
        ge=1,
        description="train on at most this many samples (e.g. 100, to check that the network "
        "can memorize them): the training part is cut, after the test and validation parts are "
        "held out, to the first max_samples of a shuffle seeded by `seed`, each class keeping "
        "its share; a larger value keeps the whole training part",
    )


def _unique_names(layers: list[Any]) -> list[Any]:
    names = [layer.name for layer in layers if layer.name is not None]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"layer names must be unique; repeated: {', '.join(repeated)}")
    return layers


class ModelSpec(Spec):
    layers: Annotated[list[LayerSpec], AfterValidator(_unique_names)] = Field(
        min_length=1, max_length=1000
    )
    input_shape: tuple[Annotated[int, Field(gt=0)], ...] | None = Field(
        None, description="checked against the data set's feature shape when given"
    )


class TrainingSpec(Spec):
    loss: LossSpec
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: {"type": "adam"},
        validate_default=True,  # type: ignore[arg-type]
    )
    batch_size: BatchSize = Field(
        32, description='samples per step; "full" for full-batch gradient descent'
    )
    epochs: int = Field(1, gt=0)
    metrics: list[MetricName] = Field(default_factory=list)
    shuffle: bool = True
    seed: int | None = Field(None, ge=0, lt=2**32, description="filled in at submission if absent")
    callbacks: list[CallbackSpec] = Field(default_factory=list, max_length=20)
    diagnostics: DiagnosticsSpec = Field(default_factory=DiagnosticsSpec)
    stop_on: StopOn | None = Field(
        None,
        description="health conditions that end the job: a list, or {conditions, patience}; "
        "turns diagnostics on (core/training/health.py)",
    )
    step: Literal["auto", "autograd"] = Field(
        "auto",
        description='"auto": dense networks train with gradients written out by hand where '
        'that is exact (much faster when small); "autograd": always through autograd',
    )
    precision: PrecisionName = Field(
        "fp32",
        description="fp32; bf16 or fp16: mixed precision (weights and their updates stay "
        "float32, the forward pass runs in the lower precision); fp16 needs a CUDA device",
    )
    lr_finder: LrFinder = Field(
        None,
        description="run the learning-rate range test first (true: its defaults); with "
        'optimizer.learning_rate "suggested" the job then trains at the suggested rate, '
        "otherwise it is the test alone",
    )


class ResourcesSpec(Spec):
    device: Literal["auto", "cpu", "cuda"] = "auto"


class JobSpec(Spec):
    name: str = Field("", max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    @model_validator(mode="after")
    def _fp16_on_a_gpu(self) -> JobSpec:
        """Refused at submission where the spec says the CPU; a job on `auto` that lands on a
        CPU worker fails before training with the same message (core/training/precision.py)."""
        if self.training.precision == "fp16" and self.resources.device == "cpu":
            raise ValueError(f"training.precision: {FP16_NEEDS_CUDA}; received device='cpu'")
        return self
