"""A network's outputs as `POST /v1/jobs/{id}/predict` answers them; numpy only.

The API shapes its answers here, and `epochal_client.offline` the outputs of a downloaded
model, so both give the same labels and probabilities. How to read a model's outputs is its
output layout, which the exported model files carry as `epochal.outputs`:

    {"task": "classification" | "regression",
     "activation": "softmax" | "sigmoid" | null,  # applied to the outputs (a model ending in
                                                  # logits, trained with from_logits: true)
     "probabilistic": bool,  # false: trained on scores (hinge, mean_squared_error, ...)
     "threshold": float}     # one score unit: the label is whether it passes this

Per input: {"label", "probabilities"} for a classifier, {"label", "scores"} for one trained
without probabilities, {"value"} for a regression; with `classes` (an upload's labels), each
label's `class` as the file wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from epochal_client.extras import PREDICT_INSTALL

try:
    import numpy as np
except ImportError as e:  # the light client installs without numpy
    raise ImportError(f"{e}; reading a model's outputs needs numpy: {PREDICT_INSTALL}") from e


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))  # no overflow for large negative x


ACTIVATIONS = {"softmax": softmax, "sigmoid": sigmoid}


def shape_outputs(
    outputs: np.ndarray, layout: Mapping[str, Any], classes: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """The answer for each row of `outputs` (batch, ...), read with the model's `layout`."""
    if layout["task"] != "classification":
        return [{"value": v} for v in outputs.tolist()]
    results = _classify(outputs, layout)
    if classes is None:
        return results
    return [{**r, "class": classes[r["label"]]} for r in results]


def _classify(outputs: np.ndarray, layout: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not layout["probabilistic"]:
        labels = (
            (outputs[:, 0] > layout["threshold"]).astype(np.int64)
            if outputs.shape[-1] == 1
            else outputs.argmax(axis=-1)
        )
        return [
            {"label": label, "scores": s}
            for label, s in zip(labels.tolist(), outputs.tolist(), strict=True)
        ]
    if (activation := layout.get("activation")) is not None:
        outputs = ACTIVATIONS[activation](outputs).astype(outputs.dtype)
    if outputs.shape[-1] == 1:  # one sigmoid unit: the probability of class 1
        outputs = np.concatenate([1 - outputs, outputs], axis=-1)
    labels = outputs.argmax(axis=-1).tolist()
    return [
        {"label": label, "probabilities": p}
        for label, p in zip(labels, outputs.tolist(), strict=True)
    ]
