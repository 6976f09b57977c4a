"""Tables (CSV, read in core.data.csv_upload; Parquet) to arrays: numeric columns as they are, text columns one-hot encoded.

A column is numeric when every cell reads as a number; otherwise it is categorical and becomes
one 0/1 feature per distinct value (sorted), up to `max_categories` values. Missing cells are
refused, naming the column and the row (rows count from 1, the header not included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.data.upload_types import Encoding, UploadOptions, refuse
from core.errors import UploadError

# A column: float64 numbers (NaN where a cell is missing), or text (None where missing).
Column = np.ndarray | list[str | None]


def too_many_columns(count: int, options: UploadOptions) -> UploadError:
    return refuse(
        ("file", "header"),
        f"the header has {count:,} columns; at most {options.max_columns:,} (EPOCHAL_MAX_COLUMNS)",
        "too_many_columns",
    )


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


MAX_EXPANSION = 200  # how many times its size a Parquet file may grow once read


def _column(chunked: pa.ChunkedArray, kind: pa.DataType) -> np.ndarray | list | None:
    """A column as float64 numbers or as text; None for a type that is neither."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = chunked.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return chunked.to_pylist()
    if pa.types.is_dictionary(kind):
        return [None if v is None else str(v) for v in chunked.to_pylist()]
    return None


def read_parquet(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    """Its metadata (columns, rows) is checked against the limits before any row is read."""
    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        if metadata.num_columns > options.max_columns:
            raise too_many_columns(metadata.num_columns, options)
        values = metadata.num_rows * max(metadata.num_columns - 1, 1)
        decoded = metadata.num_rows * metadata.num_columns * 8  # float64 cells, at the least
        if decoded > MAX_EXPANSION * path.stat().st_size + 64 * 1024 * 1024:
            raise refuse(
                ("file",),
                f"the file declares {metadata.num_rows:,} rows of {metadata.num_columns:,} "
                f"columns, more than {MAX_EXPANSION} times its own size once read: a "
                "compression bomb, or a file to send uncompressed",
                "too_large",
            )
        if values > options.max_values:
            raise refuse(
                ("file",),
                f"the file declares {metadata.num_rows:,} rows of {metadata.num_columns:,} "
                f"columns, {values:,} input values; the limit is {options.max_values:,} "
                "(EPOCHAL_MAX_DATA_VALUES)",
                "too_large",
            )
        batches = []
        for batch in parquet.iter_batches(batch_size=65_536):
            options.check_time()
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
    except (pa.ArrowException, OSError) as e:
        raise refuse(("file",), f"not a readable Parquet file: {e}") from None
    header, columns = [], []
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        options.check_time()
        kind = chunked.type
        header.append(name)
        try:
            column = _column(chunked, kind)
        except (pa.ArrowException, UnicodeDecodeError) as e:
            raise refuse(("file", name), f"column {name!r} cannot be read: {e}") from None
        if column is not None:
            columns.append(column)
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
    if repeated := sorted(n for n, count in Counter(header).items() if count > 1):
        raise refuse(("file",), f"column names must be unique; repeated: {_some(repeated, repr)}")
    target = options.target or ""
    if target not in header:
        raise refuse(
            ("target",),
            f"no column {target!r}; expected one of: {_some(header)}",
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
        options.check_time()
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
            example = next((v for v in column if not is_number(v)), values[0])
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


def _some(names: list[str], show: Callable[[str], str] = str, most: int = 20) -> str:
    """Names for a message: the first `most` of them, and how many more."""
    shown = ", ".join(map(show, names[:most]))
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")
