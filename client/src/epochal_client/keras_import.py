"""The Keras import's call: a Keras 3 model (what `model.to_json()` writes), with its compile and
fit arguments, as the equivalent JobSpec (POST /v1/specs/from-keras), which it does not submit."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epochal_client.transport import Transport

Source = Mapping[str, Any] | str | os.PathLike[str]


def read_json(source: Source | None, what: str, *, as_sent: bool = False) -> Any:
    """A mapping as it is; a str holding JSON parsed (with `as_sent`, as it is: the server
    parses the string to_json returns, bounded as a body is); else a .json file's contents.
    ValueError naming what does not parse."""
    if source is None or isinstance(source, Mapping):
        return None if source is None else dict(source)
    if isinstance(source, str) and source.lstrip().startswith("{"):
        if as_sent:
            return source
        return _loads(source, what, where="the string")
    path = Path(source)
    return _loads(path.read_text(encoding="utf-8"), what, where=str(path))


def _loads(text: str, what: str, *, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{where}: the {what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e


class KerasImportAPI(Transport):
    def from_keras(
        self,
        model: Source,
        *,
        dataset: str | Mapping[str, Any],
        compile: Source | None = None,
        fit: Source | None = None,
    ) -> dict[str, Any]:
        """The JobSpec (normalized) equivalent to a Keras model, to review and then `submit`.

        `model`: what `model.to_json()` returns (the string, or it parsed), or a .json file of
        it; `compile`: `model.get_compile_config()` or {optimizer, loss, metrics} (by default
        the compile config inside the model JSON); `fit`: fit's arguments (batch_size, epochs,
        validation_split, shuffle, callbacks as {"class_name", "config"}); `dataset`: a data set
        name or a dataset spec. `compile` and `fit` are each a mapping, a string of JSON or a
        .json file. A layer or argument Epochal cannot express raises a 422 naming the layer by
        its Keras name and the argument."""
        body: dict[str, Any] = {
            "model": read_json(model, "model", as_sent=True),
            "dataset": dataset,
        }
        if compile is not None:
            body["compile"] = read_json(compile, "compile config")
        if fit is not None:
            body["fit"] = read_json(fit, "fit arguments")
        return self._request("POST", "/v1/specs/from-keras", json=body)
