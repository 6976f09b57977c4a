"""Serving a trained job: its weights as a self-describing file, and its network for prediction.

A succeeded job's weights live in the artifacts store (`job.summary["model"]["weights"]`). The
download carries the normalized JobSpec in the safetensors metadata, so the file alone is enough
to rebuild the network. Prediction rebuilds the network from the spec, loads the weights
strictly, and runs it on the CPU in eval mode; `LRUCache` keeps the last few loaded networks.
"""

from __future__ import annotations

import json
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
from epochal_client.inputs import check_inputs
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
    An export, made from the loaded `model`, also carries how to read its outputs and what its
    inputs are (`epochal.inputs`: their shape, and the id range of a model that reads token ids),
    so `epochal_client.offline` checks them as the API does."""
    metadata = {
        "epochal.spec": json.dumps(ref.spec),
        "epochal.format": FORMAT_VERSION,
        "epochal.job_id": ref.job_id,
    }
    if ref.preprocessing is not None:
        metadata["epochal.preprocessing"] = read_model_data(ref, artifacts).to_json().decode()
    if model is not None:
        metadata["epochal.outputs"] = json.dumps(output_layout(model))
        metadata["epochal.inputs"] = json.dumps(input_layout(model))
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


def input_layout(model: LoadedModel) -> dict[str, Any]:
    """What the network takes (`epochal.inputs`): {"shape": [...], "ids": [low, high] | null}."""
    ids = model.info.ids
    return {"shape": list(model.info.feature_shape), "ids": list(ids) if ids else None}


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
    """A float32 batch of shape (n, *feature_shape); raises InputsError naming each bad input
    (epochal_client.inputs, which checks a downloaded model's inputs the same way). `features`
    (a table's, after encoding) are listed when an input has the wrong length."""
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
    try:
        flat = check_inputs(inputs, info.feature_shape, info.ids, features)
    except RowError as e:
        raise InputsError([SpecIssue(loc, msg, kind) for loc, msg, kind in e.issues]) from None
    return torch.tensor(flat, dtype=torch.float32).reshape(len(inputs), *info.feature_shape)


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
