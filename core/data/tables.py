"""Tables (CSV, Parquet) to arrays: numeric columns as they are, text columns one-hot encoded.

A column is numeric when every cell reads as a number; otherwise it is categorical and becomes
one 0/1 feature per distinct value (sorted), up to `max_categories` values. Missing cells are
refused, naming the column and the row (rows count from 1, the header not included).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.data.upload_types import Encoding, UploadOptions, refuse
from core.errors import SpecIssue, UnsupportedFormatError

# A column: float64 numbers (NaN where a cell is missing), or text (None where missing).
Column = np.ndarray | list[str | None]


def read_csv(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    """A UTF-8, comma-separated file whose first line names the columns."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise UnsupportedFormatError(
            [
                SpecIssue(
                    ("file",),
                    "the file is not UTF-8 text; expected a CSV (UTF-8, comma-separated, a "
                    "header line), an NPZ (numpy.savez) or a Parquet file",
                    "wrong_format",
                )
            ]
        )
    try:
        lines = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as e:
        raise refuse(("file",), f"not a readable CSV: {e}") from None
    if not lines:
        raise refuse(("file",), "the file is empty; expected a header line and rows", "empty")
    header = [name.strip() for name in lines[0]]
    for number, row in enumerate(lines[1:], start=1):
        if len(row) != len(header):
            raise refuse(
                ("file", number),
                f"row {number} has {len(row)} fields; the header has {len(header)}",
                "wrong_shape",
            )
    cells = list(zip(*lines[1:], strict=True)) if len(lines) > 1 else [() for _ in header]
    columns = [_csv_column(list(c)) for c in cells]
    return encode_table(header, columns, options)


def _csv_column(cells: list[str]) -> Column:
    stripped = [c.strip() for c in cells]
    try:
        return np.array(stripped, dtype=np.float64)
    except ValueError:
        pass
    if all(c == "" or _is_number(c) for c in stripped):  # numbers with gaps
        return np.array([float(c) if c else np.nan for c in stripped], dtype=np.float64)
    return [c or None for c in stripped]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_parquet(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise refuse(("file",), f"not a readable Parquet file: {e}") from None
    header, columns = [], []
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        kind = chunked.type
        header.append(name)
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            values = chunked.cast(pa.float64()).to_numpy(zero_copy_only=False)
            columns.append(np.asarray(values, dtype=np.float64))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns.append(chunked.to_pylist())
        elif pa.types.is_dictionary(kind):
            columns.append([None if v is None else str(v) for v in chunked.to_pylist()])
        else:
            raise refuse(
                ("file", name),
                f"column {name!r} is of type {kind}; expected numbers, booleans or text",
                "wrong_type",
            )
    return encode_table(header, columns, options)


def encode_table(
    header: list[str], columns: list[Column], options: UploadOptions
) -> tuple[np.ndarray, np.ndarray, Encoding]:
    """(x, raw targets, encoding): features side by side, categorical ones one-hot encoded."""
    if any(not name for name in header):
        position = header.index("") + 1
        raise refuse(("file",), f"column {position} has no name; every column needs one")
    if repeated := sorted({n for n in header if header.count(n) > 1}):
        raise refuse(
            ("file",), f"column names must be unique; repeated: {', '.join(map(repr, repeated))}"
        )
    target = options.target or ""
    if target not in header:
        raise refuse(
            ("target",),
            f"no column {target!r}; expected one of: {', '.join(header)}",
            "unknown_column",
        )
    if len(header) < 2:
        raise refuse(("file",), f"the only column is the target {target!r}; no features left")
    y = columns[header.index(target)]
    if isinstance(y, list):
        if None in y:
            row = y.index(None) + 1
            raise refuse(("file", target, row), f"target column {target!r}, row {row}: missing")
        y_array = np.array(y, dtype=str)
    else:
        y_array = y
    blocks, names, categories = [], [], {}
    n = len(y)
    for name, column in zip(header, columns, strict=True):
        if name == target:
            continue
        if not isinstance(column, list):
            blocks.append(column.reshape(n, 1))
            names.append(name)
            continue
        if None in column:
            row = column.index(None) + 1
            raise refuse(
                ("file", name, row),
                f"column {name!r}, row {row}: missing; expected one of its values",
                "missing",
            )
        values = sorted(set(column))
        if len(values) > options.max_categories:
            example = next(v for v in column if not _is_number(v))
            raise refuse(
                ("file", name),
                f"column {name!r} holds text (e.g. {example!r}) with {len(values):,} distinct "
                f"values; a text column is one-hot encoded, at most {options.max_categories} "
                "values (EPOCHAL_MAX_CATEGORIES). Drop it, or fix its non-numbers",
                "too_many_categories",
            )
        index = {v: i for i, v in enumerate(values)}
        one_hot = np.zeros((n, len(values)), dtype=np.float64)
        one_hot[np.arange(n), [index[v] for v in column]] = 1.0
        blocks.append(one_hot)
        names.extend(f"{name}={v}" for v in values)
        categories[name] = values
    x = np.concatenate(blocks, axis=1) if n else np.zeros((0, len(names)))
    features = [h for h in header if h != target]
    return x, y_array, Encoding(columns=features, features=names, categories=categories)
