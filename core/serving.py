"""Serving a trained job: its weights as a self-describing file, and its network for prediction.

A succeeded job's weights live in the artifacts store (`job.summary["model"]["weights"]`). The
download carries the normalized JobSpec in the safetensors metadata, so the file alone is enough
to rebuild the network. Prediction rebuilds the network from the spec, loads the weights
strictly, and runs it on the CPU in eval mode; `LRUCache` keeps the last few loaded networks.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from core.artifacts import Artifacts
from core.data import DatasetInfo
from core.data.catalog import SavedUploads
from core.data.preprocessing import ModelData
from core.errors import ConflictError, EpochalError, NotFoundError, SpecIssue
from core.nn.activations import PROBABILITY_ACTIVATIONS
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec.job import JobSpec
from core.store.models import Job, JobStatus
from core.training.losses import LOSSES
from core.training.plan import JobPlan, plan_job
from epochal_client.predictions import shape_outputs
from epochal_client.rows import RowError, encode_records, read_csv_rows

FORMAT_VERSION = "1"
MAX_INPUTS = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class InputsError(EpochalError):
    """Prediction inputs that do not fit the model; each issue is located in the request."""

    code = "invalid_request"

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__("; ".join(i.msg for i in issues))


@dataclass(frozen=True)
class ModelRef:
    """What locates a succeeded job's model: read from its row, so no session is held later."""

    job_id: str
    name: str
    spec: dict[str, Any]
    weights: str  # the artifacts key
    preprocessing: str | None = None  # the key of its ModelData (models saved before: none)


# A pruned sweep trial stopped early, as early stopping would, and saved its model too.
HAS_MODEL = (JobStatus.SUCCEEDED, JobStatus.PRUNED)


def model_ref(job: Job) -> ModelRef:
    if job.status not in HAS_MODEL:
        raise ConflictError(f"job {job.id} is {job.status}; a model exists once it has succeeded")
    model = job.summary.get("model") or {}
    if not model.get("weights"):
        raise NotFoundError(f"job {job.id} succeeded but recorded no saved model")
    return ModelRef(job.id, job.name, job.spec, model["weights"], model.get("preprocessing"))


def read_model_data(ref: ModelRef, artifacts: Artifacts) -> ModelData:
    if ref.preprocessing is None:
        return ModelData()
    try:
        return ModelData.from_json(artifacts.read(ref.preprocessing))
    except FileNotFoundError:
        raise NotFoundError(
            f"the preprocessing of job {ref.job_id} is not in the artifacts store "
            f"({ref.preprocessing!r})"
        ) from None


def _read_weights(ref: ModelRef, artifacts: Artifacts) -> bytes:
    try:
        return artifacts.read(ref.weights)
    except FileNotFoundError:
        raise NotFoundError(
            f"the weights of job {ref.job_id} are not in the artifacts store ({ref.weights!r})"
        ) from None


def bundle_metadata(
    ref: ModelRef, artifacts: Artifacts, model: LoadedModel | None = None
) -> dict[str, str]:
    """What every downloaded model file carries, whatever its format (safetensors metadata,
    ONNX metadata_props, TorchScript extra files): enough to know what the model is and how
    to prepare its inputs (the fitted scaler and class labels, when the spec asked for them).
    An export, made from the loaded `model`, also carries how to read its outputs."""
    metadata = {
        "epochal.spec": json.dumps(ref.spec),
        "epochal.format": FORMAT_VERSION,
        "epochal.job_id": ref.job_id,
    }
    if ref.preprocessing is not None:
        metadata["epochal.preprocessing"] = read_model_data(ref, artifacts).to_json().decode()
    if model is not None:
        metadata["epochal.outputs"] = json.dumps(output_layout(model))
    return metadata


def model_bundle(ref: ModelRef, artifacts: Artifacts) -> bytes:
    """The stored weights re-saved with `bundle_metadata` in the safetensors metadata."""
    tensors = load_safetensors(_read_weights(ref, artifacts))
    return save_safetensors(tensors, metadata=bundle_metadata(ref, artifacts))


@dataclass(frozen=True)
class LoadedModel:
    network: Network  # on the CPU, in eval mode
    info: DatasetInfo
    # The activation (softmax, sigmoid) that turns the outputs into probabilities when the
    # network ends in logits (from_logits: true); epochal_client.predictions applies it.
    activation: str | None
    # A classifier trained on scores (e.g. mean_squared_error, hinge) gives no probabilities:
    # its label is the argmax, or for one unit whether the score passes this threshold.
    probabilistic: bool
    threshold: float
    # Applied to inputs before the network (the training part's scaler), and the class labels.
    data: ModelData = field(default_factory=ModelData)
    spec: JobSpec | None = None
    plan: JobPlan | None = None


def load_model(ref: ModelRef, artifacts: Artifacts, settings: Settings) -> LoadedModel:
    spec = JobSpec.model_validate(ref.spec)
    data = read_model_data(ref, artifacts)
    plan = plan_job(spec, settings, SavedUploads(data.datasets))
    with torch.device("cpu"):
        network = build_network(spec.model, plan.info.feature_shape)
    network.load_state_dict(load_safetensors(_read_weights(ref, artifacts)), strict=True)
    network.eval()
    activation = plan.metrics_activation
    probabilistic = network.output_activation in PROBABILITY_ACTIVATIONS or activation is not None
    threshold = 0.0 if LOSSES.get(spec.training.loss.type).targets == "labels" else 0.5
    return LoadedModel(network, plan.info, activation, probabilistic, threshold, data, spec, plan)


def output_layout(model: LoadedModel) -> dict[str, Any]:
    """How to read the network's outputs (epochal_client.predictions, `epochal.outputs`)."""
    return {
        "task": model.info.task,
        "activation": model.activation,
        "probabilistic": model.probabilistic,
        "threshold": model.threshold,
    }


def parse_rows(rows: list[Any] | str, data: ModelData) -> torch.Tensor:
    """Raw table rows (records, or CSV text under the training header) as a float32 batch,
    text categories one-hot encoded as at upload (unscaled, like `inputs`); raises InputsError
    naming the row (from 0) and the column, and what was expected."""
    where = "csv" if isinstance(rows, str) else "records"
    if data.table is None:
        raise InputsError(
            [
                SpecIssue(
                    (where,),
                    "this model's files carry no column encoding: it was not trained on an "
                    "uploaded table (CSV or Parquet), or was trained before models kept one "
                    "(clone the job to train it again); send `inputs`, vectors of the model's "
                    "input shape",
                    "no_table",
                )
            ]
        )
    try:
        records = read_csv_rows(rows, data.table, MAX_INPUTS) if isinstance(rows, str) else rows
        if not records:
            raise RowError([((), "expected at least one row; received none", "empty")])
        if len(records) > MAX_INPUTS:
            raise RowError(
                [
                    (
                        (),
                        f"expected at most {MAX_INPUTS:,} rows; received {len(records):,}",
                        "too_large",
                    )
                ]
            )
        return torch.from_numpy(encode_records(records, data.table))
    except RowError as e:
        raise InputsError(
            [SpecIssue((where, *loc), msg, kind) for loc, msg, kind in e.issues]
        ) from None


def parse_inputs(
    inputs: list[Any], info: DatasetInfo, features: list[str] | None = None
) -> torch.Tensor:
    """A float32 batch of shape (n, *feature_shape); raises InputsError naming each bad input.
    `features` (a table's, after encoding) are listed when an input has the wrong length."""
    if not inputs:
        raise InputsError([SpecIssue(("inputs",), "expected at least one input; received none")])
    if len(inputs) > MAX_INPUTS:
        raise InputsError(
            [
                SpecIssue(
                    ("inputs",),
                    f"expected at most {MAX_INPUTS:,} inputs; received {len(inputs):,}",
                    "too_large",
                )
            ]
        )
    shape = info.feature_shape
    issues: list[SpecIssue] = []
    flat: list[float] = []
    for i, value in enumerate(inputs):
        problem = _flatten(value, shape, f"inputs[{i}]", flat, info.ids, input_shape=shape)
        if problem is not None:
            message = problem[0]
            if features and problem[1] == "wrong_shape":
                shown = ", ".join(features[:100])
                more = f" and {len(features) - 100:,} more" if len(features) > 100 else ""
                message += f"; the features, in order: {shown}{more}"
            issues.append(SpecIssue(("inputs", i), message, problem[1]))
            if len(issues) >= 10:  # enough to see the pattern
                break
    if issues:
        raise InputsError(issues)
    batch = torch.tensor(flat, dtype=torch.float32).reshape(len(inputs), *shape)
    finite = torch.isfinite(batch.reshape(len(inputs), -1)).all(dim=1)
    if not bool(finite.all()):
        for i in torch.nonzero(~finite).flatten().tolist()[:10]:
            # The fast path let NaN and infinities through: find and name the value.
            problem = _flatten(
                inputs[i], shape, f"inputs[{i}]", [], info.ids, input_shape=shape, fast=False
            )
            message, kind = problem or (f"inputs[{i}] holds a value outside float32's range", "")
            issues.append(SpecIssue(("inputs", i), message, kind or "not_finite"))
        raise InputsError(issues)
    return batch


def _flatten(
    value: Any,
    shape: tuple[int, ...],
    where: str,
    out: list[float],
    ids: tuple[int, int] | None,
    *,
    input_shape: tuple[int, ...],
    fast: bool = True,
) -> tuple[str, str] | None:
    """Append the numbers of `value` to `out`; return (message, type) for the first problem.

    The fast path takes a plain list of numbers at once and leaves the finiteness check to the
    caller; the slow path checks each value, to name the one that is wrong.
    """
    if fast and ids is None and len(shape) == 1 and isinstance(value, list):
        try:
            numbers = [float(v) for v in value if type(v) is float or type(v) is int]
        except OverflowError:  # an integer too large for a float
            numbers = []
        if len(numbers) == len(value) == shape[0]:
            out.extend(numbers)
            return None
    if not shape:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{where} is {_show(value)}; expected a number", "not_a_number"
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            return f"{where} is {_show(value)}; expected a finite number", "not_finite"
        if ids is not None and (number != int(number) or not ids[0] <= number <= ids[1]):
            return (
                f"{where} is {_show(value)}; expected an integer id in [{ids[0]}, {ids[1]}]",
                "not_an_id",
            )
        out.append(number)
        return None
    if not isinstance(value, list) or len(value) != shape[0]:
        kind = "wrong_shape"
        message = f"{where} has shape {_fmt(_shape_of(value))}; expected {_fmt(shape)}"
        if "][" in where:  # a part of one input: say what the whole should be
            return f"{message} (an input has the model's input shape {_fmt(input_shape)})", kind
        return f"{message}, the model's input shape", kind
    for j, item in enumerate(value):
        problem = _flatten(
            item, shape[1:], f"{where}[{j}]", out, ids, input_shape=input_shape, fast=fast
        )
        if problem is not None:
            return problem
    return None


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _shape_of(value: Any) -> tuple[int, ...]:
    """The shape a nested list seems to have, read along its first elements."""
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


def _fmt(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


@torch.no_grad()
def predict(model: LoadedModel, batch: torch.Tensor) -> list[dict[str, Any]]:
    """Per input: {"label", "probabilities"} for a classifier, {"value"} for a regression
    (epochal_client.predictions, which reads a downloaded model's outputs the same way).

    Inputs are raw, as in the data set: the model's saved scaler is applied here. A classifier
    trained on labelled uploads also answers each label's `class` as the file wrote it.
    """
    if model.data.scaler is not None:
        batch = model.data.scaler.apply_tensor(batch)
    outputs = model.network(batch).numpy()
    return shape_outputs(outputs, output_layout(model), model.data.classes)


class LRUCache(Generic[K, V]):
    """A thread-safe cache of at most `maxsize` values, dropping the least recently used.

    A value is built outside the lock, so one slow load does not hold up hits on others; two
    threads that miss the same key at once both build it and the first one stored wins.
    """

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError(f"expected a positive maxsize; received maxsize={maxsize}")
        self.maxsize = maxsize
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value
