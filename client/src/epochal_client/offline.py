"""A downloaded ONNX model applied offline, answering as `POST /v1/jobs/{id}/predict` does.

`predict_file("model.onnx", "rows.csv")` reads the file from `GET /v1/jobs/{id}/model?format=onnx`
and its metadata (`epochal.preprocessing`: the column encoding and the scaler; `epochal.outputs`:
how to read the outputs; `epochal.job_id`), encodes the rows as the API does
(`epochal_client.rows`), runs the network with onnxruntime and shapes its outputs as the API
does (`epochal_client.predictions`). No server is reached, and the data set may be deleted.

Rows come from a CSV file under the training header (a byte-order mark and CRLF line ends are
fine; the target and other columns are ignored), a JSON file (a list of records
`{column: value}`, or the API's body: `{"records": [...]}` or `{"inputs": [...]}`), or an NPZ
file of encoded inputs (the array `x`, `inputs`, or its only array), unscaled like the API's
`inputs`. It needs the `predict` extra (numpy, onnxruntime): importing this module without them
raises an ImportError naming `pip install 'epochal-client[predict]'`; `import epochal_client`
does not import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epochal_client.predictions import shape_outputs
from epochal_client.rows import RowError, rows_to_features, scale

INSTALL = "pip install 'epochal-client[predict]'"
try:  # numpy's absence is reported by the two modules above
    import numpy as np
    import onnxruntime
except ImportError as e:
    raise ImportError(f"{e}; predicting offline needs numpy and onnxruntime: {INSTALL}") from e

SUFFIXES = (".csv", ".json", ".npz")


class ModelFileError(ValueError):
    """A model file that cannot be used offline: not ONNX, or without Epochal's metadata."""


def predict_file(model_path: str | Path, rows_path: str | Path) -> dict[str, Any]:
    """{"job_id", "outputs"}, as the API answers for these rows; "job_id" is None when the model's
    metadata lacks it. Raises OSError for a file that cannot be read, and ValueError (RowError
    naming the row and the column, ModelFileError) for rows or a model that do not fit."""
    session = _session(Path(model_path))
    meta = session.get_modelmeta().custom_metadata_map
    preprocessing = _json(meta, "epochal.preprocessing", model_path) or {}
    layout = _json(meta, "epochal.outputs", model_path)
    if layout is None:
        raise ModelFileError(
            f"{model_path}: the model carries no `epochal.outputs` (how to read its outputs): "
            "it was exported before models kept one; predict through the API instead"
        )
    x = _inputs(Path(rows_path), preprocessing, tuple(session.get_inputs()[0].shape[1:]))
    if len(x) == 0:
        raise RowError([((), f"{rows_path}: expected at least one row; received none", "empty")])
    outputs = session.run(["outputs"], {"inputs": x})[0]
    return {
        "job_id": meta.get("epochal.job_id"),
        "outputs": shape_outputs(outputs, layout, preprocessing.get("classes")),
    }


def _session(path: Path) -> onnxruntime.InferenceSession:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no library lines on stderr
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (onnxruntime raises Exception subclasses of its own)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelFileError(
            f"{path}: not an ONNX model ({first}); expected a file from "
            "GET /v1/jobs/{id}/model?format=onnx"
        ) from None


def _json(meta: dict[str, str], key: str, path: str | Path) -> Any:
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: its metadata {key!r} is not JSON: {e}") from None


def _malformed(message: str) -> RowError:
    return RowError([((), message, "malformed")])


def _inputs(path: Path, preprocessing: dict[str, Any], shape: tuple[Any, ...]) -> np.ndarray:
    """What the network takes: float32 (n, *input shape), encoded and scaled."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                return rows_to_features(f.read(), preprocessing)
        except UnicodeDecodeError:
            raise _malformed(f"{path}: not UTF-8 text; expected a CSV") from None
    if suffix == ".json":
        try:
            body = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _malformed(f"{path}: not JSON ({e})") from None
        if isinstance(body, dict) and len(body) == 1 and "inputs" in body:
            try:
                x = np.asarray(body["inputs"], dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise _malformed(f"{path}: inputs are not arrays of numbers ({e})") from None
            return _vectors(x, preprocessing, shape, path)
        if isinstance(body, dict) and len(body) == 1 and "records" in body:
            body = body["records"]
        if not isinstance(body, list):
            raise _malformed(
                f"{path}: expected a list of records {{column: value}}, or "
                '{"records": [...]} or {"inputs": [...]}'
            )
        return rows_to_features(body, preprocessing)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            name = next((n for n in ("x", "inputs") if n in names), None)
            if name is None and len(names) != 1:
                raise _malformed(f"{path}: expected an array named x; the file holds {names}")
            x = archive[name or names[0]]
        if x.dtype.kind not in "biuf":
            raise _malformed(f"{path}: expected numbers; the array holds {x.dtype}")
        return _vectors(x.astype(np.float32), preprocessing, shape, path)
    raise RowError(
        [((), f"{path}: expected a file ending in {', '.join(SUFFIXES)}", "wrong_format")]
    )


def _vectors(
    x: np.ndarray, preprocessing: dict[str, Any], shape: tuple[Any, ...], path: Path
) -> np.ndarray:
    """Encoded inputs, checked against the model's input shape, then scaled."""
    if x.ndim == 0 or tuple(x.shape[1:]) != shape:
        features = (preprocessing.get("table") or {}).get("features")
        listed = f"; the features, in order: {', '.join(features)}" if features else ""
        raise RowError(
            [
                (
                    ("inputs",),
                    f"{path}: inputs of shape {x.shape}; expected (n, "
                    f"{', '.join(map(str, shape))}), the model's input shape{listed}",
                    "wrong_shape",
                )
            ]
        )
    return scale(x, preprocessing.get("scaler"))
