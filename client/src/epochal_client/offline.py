"""A downloaded ONNX model applied offline, answering as `POST /v1/jobs/{id}/predict` does.

`predict_file("model.onnx", "rows.csv")` reads the file from `GET /v1/jobs/{id}/model?format=onnx`
and its metadata (`epochal.preprocessing`: the column encoding and the scaler; `epochal.outputs`:
how to read the outputs; `epochal.job_id`), encodes the rows as the API does
(`epochal_client.rows`), runs the network with onnxruntime and shapes its outputs as the API
does (`epochal_client.predictions`). No server is reached, and the data set may be deleted.

Rows come from a file read by `epochal_client.row_files` as the CLI reads it for the API (a
CSV under the training header, a JSON file of records or vectors, an NPZ file's array, picked
by `array` or as its only one), and encoded inputs are checked as the API checks them
(`epochal_client.inputs`: shape, finite numbers, the id range of a model that reads ids). It
needs the `predict` extra (numpy, onnxruntime): importing this module without them raises an
ImportError naming the install; `import epochal_client` does not import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epochal_client.extras import PREDICT_INSTALL
from epochal_client.inputs import check_inputs
from epochal_client.predictions import shape_outputs
from epochal_client.row_files import read_csv_text, read_row_file
from epochal_client.rows import RowError, rows_to_features, scale

try:  # numpy's absence is reported by the modules above
    import numpy as np
    import onnxruntime
except ImportError as e:
    raise ImportError(
        f"{e}; predicting offline needs numpy and onnxruntime: {PREDICT_INSTALL}"
    ) from e


class ModelFileError(ValueError):
    """A model file that cannot be used offline: not ONNX, without Epochal's metadata, or one
    onnxruntime cannot run."""


def predict_file(
    model_path: str | Path, rows_path: str | Path, array: str | None = None
) -> dict[str, Any]:
    """{"job_id", "outputs", "classes"}, as the API answers for these rows ("classes": the class
    labels in probability order, or None; "job_id": None when the model's metadata lacks it).
    `array` names the array of an .npz file (default: its only one). Raises OSError for a file
    that cannot be read, and ValueError (RowFileError, RowError naming the row and the column or
    feature, ModelFileError) for rows or a model that do not fit."""
    session = _session(Path(model_path))
    meta = session.get_modelmeta().custom_metadata_map
    preprocessing = _json(meta, "epochal.preprocessing", model_path) or {}
    layout = _json(meta, "epochal.outputs", model_path)
    if layout is None:
        raise ModelFileError(
            f"{model_path}: the model carries no `epochal.outputs` (how to read its outputs): "
            "it was exported before models kept one; predict through the API instead"
        )
    inputs = _json(meta, "epochal.inputs", model_path) or {
        "shape": session.get_inputs()[0].shape[1:],  # exported before models kept `epochal.inputs`
        "ids": None,
    }
    x = _features(read_row_file(rows_path, array), preprocessing, inputs)
    try:
        outputs = session.run(["outputs"], {"inputs": x})[0]
    except Exception as e:  # noqa: BLE001 (onnxruntime raises Exception subclasses of its own)
        raise ModelFileError(f"{model_path}: onnxruntime could not run it: {_first(e)}") from None
    classes = preprocessing.get("classes")
    return {
        "job_id": meta.get("epochal.job_id"),
        "outputs": shape_outputs(outputs, layout, classes),
        "classes": classes,
    }


def _features(
    rows: dict[str, Any], preprocessing: dict[str, Any], inputs: dict[str, Any]
) -> np.ndarray:
    """What the network takes: float32 (n, *input shape), encoded and scaled."""
    if "csv" in rows:
        return _some(rows_to_features(read_csv_text(rows["csv"]), preprocessing))
    if "records" in rows:
        return _some(rows_to_features(rows["records"], preprocessing))
    batch = rows["inputs"]
    shape = [int(n) for n in inputs["shape"]]
    features = (preprocessing.get("table") or {}).get("features")
    if isinstance(batch, np.ndarray):  # as Client.predict sends it: its values, checked below
        batch = batch.tolist()
    if not isinstance(batch, list):
        batch = [batch]  # a scalar: refused as an input of shape ()
    flat = check_inputs(batch, shape, inputs.get("ids"), features)
    x = np.asarray(flat, dtype=np.float32).reshape(len(batch), *shape)
    try:
        return scale(x, preprocessing.get("scaler"))
    except ValueError as e:  # numpy's broadcast error: the metadata does not agree with itself
        raise ModelFileError(f"the model's scaler does not fit its inputs ({e})") from None


def _some(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        raise RowError([((), "expected at least one row; received none", "empty")])
    return x


def _first(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _session(path: Path) -> onnxruntime.InferenceSession:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no library lines on stderr
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (onnxruntime raises Exception subclasses of its own)
        raise ModelFileError(
            f"{path}: not an ONNX model ({_first(e)}); expected a file from "
            "GET /v1/jobs/{id}/model?format=onnx"
        ) from None


def _json(meta: dict[str, str], key: str, path: str | Path) -> Any:
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: its metadata {key!r} is not JSON: {e}") from None
