"""Uploaded data sets: read a CSV, NPZ or Parquet file into normalized arrays, or refuse it.

Every check happens here, before anything is stored: a refused file raises `UploadError` with
each problem located (`file`, a column and row, an array, the `target` or `task` parameter).
What comes out is what training reads: float32 features, and class ids 0..K-1 (int64) or
float32 regression targets, saved as one NPZ so no worker ever parses the CSV again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.base import Arrays, Task
from core.data.csv_upload import read_csv
from core.data.npz_upload import read_npz
from core.data.tables import read_parquet
from core.data.upload_types import (
    PARQUET_MAGIC,
    ZIP_MAGIC,
    Encoding,
    Format,
    UploadOptions,
    refuse,
)
from core.errors import SpecIssue, UnsupportedFormatError
from core.text import nul_in, nul_message


@dataclass(frozen=True)
class ParsedDataset:
    format: Format
    arrays: Arrays
    task: Task
    num_classes: int | None
    encoding: Encoding

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.arrays.x.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return () if self.task == "classification" else tuple(self.arrays.y.shape[1:])


def detect_format(path: Path, declared: Format | None) -> Format:
    """The declared format, checked against the file's magic bytes, or the one they show."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise refuse(("file",), "the file is empty; expected a CSV, NPZ or Parquet file", "empty")
    sniffed: Format = "npz" if head == ZIP_MAGIC else "parquet" if head == PARQUET_MAGIC else "csv"
    if declared is None or declared == sniffed:
        return sniffed
    found = {
        "npz": "a zip (NPZ) file",
        "parquet": "a Parquet file",
        "csv": "not a zip (NPZ) or Parquet file",
    }[sniffed]
    raise UnsupportedFormatError(
        [
            SpecIssue(
                ("file",),
                f"format={declared} but the file is {found}; expected a {declared} file",
                "wrong_format",
            )
        ]
    )


def parse_upload(path: Path, options: UploadOptions) -> ParsedDataset:
    """Read and check the file at `path`; raises UploadError (or UnsupportedFormatError)."""
    fmt = detect_format(path, options.format)
    if fmt == "npz":
        if options.target:
            raise refuse(("target",), "an NPZ holds its targets in `y`; leave target unset")
        x, y, encoding = read_npz(path, options)
    else:
        if not options.target:
            raise refuse(
                ("target",),
                f"a {fmt.upper()} upload needs target=<the column to predict>",
                "missing",
            )
        x, y, encoding = (read_csv if fmt == "csv" else read_parquet)(path, options)
    if (where := nul_in(encoding.as_dict())) is not None:  # names and labels are stored
        raise refuse(("file",), f"a column name or a label: {nul_message(where[1])}", "nul")
    return finish(fmt, x, y, encoding, options)


def finish(
    fmt: Format, x: np.ndarray, y: np.ndarray, encoding: Encoding, options: UploadOptions
) -> ParsedDataset:
    """The checks every format shares: row count, size, finite features, and the targets."""
    rows = len(x)
    if len(y) != rows:
        raise refuse(
            ("file", "y"), f"x has {rows} rows but y has {len(y)}; expected one target per row"
        )
    if rows < options.min_rows:
        raise refuse(
            ("file",),
            f"the data set has {rows} rows; expected at least {options.min_rows} "
            "(EPOCHAL_MIN_DATASET_ROWS)",
            "too_few_rows",
        )
    values = int(np.prod(x.shape, dtype=np.int64))
    if values > options.max_values:
        raise refuse(
            ("file",),
            f"the data set holds {values:,} input values; the limit is {options.max_values:,} "
            "(EPOCHAL_MAX_DATA_VALUES)",
            "too_large",
        )
    features = np.asarray(x, dtype=np.float32)
    _check_finite(features, fmt, encoding, "x")
    targets, task, classes = encode_targets(y, options.task, options.max_categories, fmt)
    encoding = Encoding(encoding.columns, encoding.features, encoding.categories, classes)
    num_classes = len(classes) if classes is not None else None
    return ParsedDataset(fmt, Arrays(features, targets), task, num_classes, encoding)


def _check_finite(values: np.ndarray, fmt: Format, encoding: Encoding, name: str) -> None:
    bad = ~np.isfinite(values.reshape(len(values), -1))
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    raw = values.reshape(len(values), -1)[row, col]
    what = "missing or NaN" if np.isnan(raw) else "infinite or beyond float32's range"
    if fmt == "npz":
        raise refuse(
            ("file", name, row), f"{name}[{row}] holds a value that is {what}", "not_finite"
        )
    column = encoding.features[col] if col < len(encoding.features) else str(col)
    raise refuse(
        ("file", column, row + 1),
        f"column {column!r}, row {row + 1}: the value is {what}; expected a finite number",
        "not_finite",
    )


def encode_targets(
    y: np.ndarray, task: Task | None, max_categories: int, fmt: Format
) -> tuple[np.ndarray, Task, list[Any] | None]:
    """(targets, task, classes): class ids 0..K-1 with their labels, or float32 values.

    Without a `task`, text or integer targets with at most `max_categories` distinct values
    make a classification; any other numbers a regression.
    """
    where: tuple[str | int, ...] = ("file", "y") if fmt == "npz" else ("target",)
    text = y.dtype.kind in "OUS"
    if text and task == "regression":
        raise refuse(where, "task=regression needs numeric targets; the targets hold text")
    if not text and y.dtype.kind not in "biuf":
        raise refuse(where, f"targets of dtype {y.dtype}; expected numbers or text labels")
    numbers = None if text else y.astype(np.float64)
    if numbers is not None and not np.isfinite(numbers).all():
        row = int(np.argwhere(~np.isfinite(numbers.reshape(len(y), -1)))[0][0])
        raise refuse(
            (*where, row if fmt == "npz" else row + 1),
            f"target of row {row if fmt == 'npz' else row + 1} is missing, NaN or infinite",
            "not_finite",
        )
    if task is None:
        integral = numbers is not None and bool((numbers == np.round(numbers)).all())
        few = len(np.unique(y if text else numbers)) <= max_categories
        task = "classification" if y.ndim == 1 and (text or (integral and few)) else "regression"
    if task == "regression":
        assert numbers is not None
        values = numbers.astype(np.float32)
        if not np.isfinite(values).all():
            raise refuse(where, "a target is beyond float32's range", "not_finite")
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        if values.ndim != 2:
            raise refuse(where, f"regression targets of rank {values.ndim}; expected (rows, k)")
        return values, task, None
    if y.ndim != 1:
        raise refuse(
            where, f"class labels of shape {y.shape}; expected one label per row, shape (rows,)"
        )
    if numbers is not None and not (numbers == np.round(numbers)).all():
        row = int(np.argwhere(numbers != np.round(numbers))[0][0])
        raise refuse(
            where,
            f"task=classification needs integer or text labels; row {row} holds {numbers[row]}",
        )
    labels = y.astype(str) if text else numbers.astype(np.int64)  # type: ignore[union-attr]
    classes, ids = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise refuse(
            where, f"every row has the label {classes[0]!r}; a classifier needs two classes or more"
        )
    return ids.astype(np.int64), task, [c.item() for c in classes]


def write_npz(arrays: Arrays, path: Path) -> None:
    """The arrays as the store keeps them (an .npz archive, read back by `from_npz`), written
    to a file without the archive's bytes in memory."""
    with open(path, "wb") as f:
        np.savez(f, x=arrays.x, y=arrays.y)


def from_npz(data: bytes) -> Arrays:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return Arrays(npz["x"], npz["y"])
