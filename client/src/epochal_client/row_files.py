"""A file of rows to predict on, read as `POST /v1/jobs/{id}/predict` takes it.

One reader for the API's path (`epochal predict JOB FILE`, which sends what it returns to
`Client.predict`) and the offline one (`epochal_client.offline.predict_file`), so a file means
the same whichever path reads it:

- `.csv`: rows under the training header -> {"csv": path} (the target and other columns are
  ignored);
- `.json`: a list of records `{column: value}` -> {"records": [...]}; any other list (vectors)
  -> {"inputs": [...]}; or the API's own body, {"records": [...]} or {"inputs": [...]};
- `.npz`: encoded inputs, unscaled like the API's `inputs` -> {"inputs": array}: the array
  named `array`, else the file's only array. Reading one needs numpy (the `predict` extra).

Raises RowFileError (a ValueError) for a file that cannot be read so, naming the file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from epochal_client.extras import PREDICT_INSTALL

SUFFIXES = (".csv", ".json", ".npz")


class RowFileError(ValueError):
    """A file of rows that cannot be read: missing, of an unknown kind, or malformed."""


def read_row_file(path: str | Path, array: str | None = None) -> dict[str, Any]:
    """{"csv": path} | {"records": [...]} | {"inputs": [...] or a numpy array}: one of the
    keyword arguments of `Client.predict`. `array` names the array of an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise RowFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if array is not None and suffix != ".npz":
        raise RowFileError(f"{path}: an array is named ({array!r}) but the file is not .npz")
    if suffix == ".csv":
        return {"csv": path}
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".npz":
        return {"inputs": _npz_array(path, array)}
    raise RowFileError(f"{path}: expected a file ending in {', '.join(SUFFIXES)}")


def read_csv_text(path: Path) -> str:
    """A CSV file's text (a byte-order mark is dropped); RowFileError if it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RowFileError(f"{path}: not UTF-8 text; expected a CSV") from None


def _json_rows(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RowFileError(f"{path}: not JSON: {e}") from None
    if isinstance(data, dict) and len(data) == 1 and set(data) <= {"records", "inputs"}:
        [(key, rows)] = data.items()
        if not isinstance(rows, list):
            raise RowFileError(f"{path}: {key!r} is {type(rows).__name__}; expected a list")
        return data
    if isinstance(data, list):
        every_record = data and all(isinstance(r, dict) for r in data)
        return {"records": data} if every_record else {"inputs": data}
    raise RowFileError(
        f'{path}: expected a list of records, or {{"records": [...]}} or '
        f'{{"inputs": [...]}}; received {type(data).__name__}'
        + (f" with keys {sorted(data)}" if isinstance(data, dict) else "")
    )


def _npz_array(path: Path, name: str | None) -> Any:
    try:
        import numpy as np  # the `predict` extra: the light client reads CSV and JSON without it
    except ImportError:
        raise RowFileError(f"{path}: reading .npz inputs needs numpy: {PREDICT_INSTALL}") from None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            names = list(arrays.files)
            if name is None and len(names) == 1:
                name = names[0]
            if name is None or name not in names:
                wanted = (
                    "name the array to read (--array NAME)"
                    if name is None
                    else f"no array named {name!r}"
                )
                raise RowFileError(f"{path}: {wanted}; it holds {', '.join(names) or 'no arrays'}")
            return arrays[name]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if isinstance(e, RowFileError):
            raise
        raise RowFileError(f"{path}: not a readable .npz file ({e})") from None
