"""Raw table rows (records, or CSV text under the training header) to a model's feature matrix.

Numpy and the standard library only (the client's `predict` extra): the API encodes the rows
sent to `POST /v1/jobs/{id}/predict` with it, and `epochal_client.offline` the rows fed to a
downloaded model. It reads the layout every model file carries as `epochal.preprocessing`
(README "Using a trained model"):

    {"table": {"columns": [...], "features": [...], "categories": {column: [values]}},
     "scaler": {"kind": ..., "offset": [...], "scale": [...]} | null,
     "classes": [...] | null, ...}

A numeric column is one feature; a text column is one 0/1 feature per known value, in the
`categories` order, as at upload. Columns not in `columns` (the target, say) are ignored.
As at upload, a boolean is the number 1 or 0 (a Parquet boolean column is numeric), and a text
value is the category that names it exactly (a Parquet file's text is kept as it is), else the
one that names it without surrounding spaces (a CSV file's cells are stripped).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from epochal_client.extras import PREDICT_INSTALL

try:
    import numpy as np
except ImportError as e:  # the light client installs without numpy
    raise ImportError(f"{e}; encoding raw rows needs numpy: {PREDICT_INSTALL}") from e

MAX_SHOWN = 20  # names listed in one message
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A CSV header may carry columns the model does not read (the target, notes), but not without
# bound: each header name is compared with the model's columns.
MAX_HEADER_FACTOR, MAX_HEADER_EXTRA = 2, 100


class RowError(ValueError):
    """Rows that do not fit the table: each issue is (loc, message, type), loc = (row, column)."""

    def __init__(self, issues: list[tuple[tuple[Any, ...], str, str]]):
        self.issues = issues
        super().__init__("; ".join(msg for _, msg, _ in issues))


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_SHOWN])
    more = len(names) - MAX_SHOWN
    return shown + (f" and {more:,} more" if more > 0 else "")


def encode_records(records: Sequence[Mapping[str, Any]], table: Mapping[str, Any]) -> np.ndarray:
    """float32 (n, features), unscaled; raises RowError naming each bad row and column (at most
    10 issues). A CSV cell (text) is read as a number in a numeric column."""
    columns: list[str] = list(table["columns"])
    categories: dict[str, list[str]] = dict(table.get("categories") or {})
    index = {c: {v: i for i, v in enumerate(vs)} for c, vs in categories.items()}
    width = sum(len(categories[c]) if c in categories else 1 for c in columns)
    x = np.zeros((len(records), width), dtype=np.float32)
    issues: list[tuple[tuple[Any, ...], str, str]] = []
    for r, record in enumerate(records):
        if len(issues) >= 10:
            break
        if not isinstance(record, Mapping):
            issues.append(((r,), f"row {r} is not an object of column: value", "not_a_record"))
            continue
        if missing := [c for c in columns if c not in record]:
            issues.append(
                (
                    (r, missing[0]),
                    f"row {r} has no column {_some(missing)}; expected the columns "
                    f"{_some(columns)}",
                    "missing_column",
                )
            )
            continue
        at = 0
        for column in columns:
            value = record[column]
            if column in categories:
                known = categories[column]
                text = _as_text(value)
                if text is None:
                    issues.append(
                        (
                            (r, column),
                            f"row {r}, column {column!r}: {_show(value)} is not text; expected "
                            f"one of {_some(known)}",
                            "wrong_type",
                        )
                    )
                elif (i := _category(index[column], text)) is None:
                    issues.append(
                        (
                            (r, column),
                            f"row {r}, column {column!r}: unknown category {_show(text)}; "
                            f"expected one of {_some(known)}",
                            "unknown_category",
                        )
                    )
                else:
                    x[r, at + i] = 1.0
                at += len(known)
            else:
                number = _as_number(value)
                if number is None:
                    issues.append(
                        (
                            (r, column),
                            f"row {r}, column {column!r}: {_show(value)} is not a finite "
                            "number; expected a number (or a boolean)",
                            "wrong_type",
                        )
                    )
                else:
                    x[r, at] = number
                at += 1
            if len(issues) >= 10:
                break
    if issues:
        raise RowError(issues)
    return x


def read_csv_rows(
    text: str, table: Mapping[str, Any], max_rows: int | None = None
) -> list[dict[str, str]]:
    """The records of a CSV whose header names the table's columns (others are ignored);
    refused as soon as it passes `max_rows` rows, before they are all held."""
    try:
        return _csv_rows(text, list(table["columns"]), max_rows)
    except csv.Error as e:
        raise RowError([((), f"not a readable CSV: {e}", "malformed")]) from None


def _csv_rows(text: str, columns: list[str], max_rows: int | None) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next((row for row in reader if row), None)
    if header is None:
        raise RowError([((), f"the CSV is empty; expected a header of {_some(columns)}", "empty")])
    header = [h.strip() for h in header]
    if len(header) > MAX_HEADER_FACTOR * len(columns) + MAX_HEADER_EXTRA:
        raise RowError(
            [
                (
                    (),
                    f"the header has {len(header):,} columns; expected {_some(columns)}",
                    "too_large",
                )
            ]
        )
    seen: set[str] = set()
    if twice := [h for h in header if h in seen or seen.add(h)]:
        raise RowError(
            [(("header", twice[0]), f"the header names {twice[0]!r} twice", "duplicate_column")]
        )
    if missing := [c for c in columns if c not in seen]:
        raise RowError(
            [
                (
                    ("header", missing[0]),
                    f"the header lacks {_some(missing)}; expected the columns {_some(columns)}",
                    "missing_column",
                )
            ]
        )
    wanted = set(columns)  # the others (the target, notes) are not kept
    records = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise RowError(
                [
                    (
                        (len(records),),
                        f"row {len(records)} has {len(row)} fields; the header has {len(header)}",
                        "wrong_shape",
                    )
                ]
            )
        if max_rows is not None and len(records) == max_rows:
            raise RowError(
                [((), f"expected at most {max_rows:,} rows; received more", "too_large")]
            )
        records.append({h: v for h, v in zip(header, row, strict=True) if h in wanted})
    return records


def scale(x: np.ndarray, scaler: Mapping[str, Any] | None) -> np.ndarray:
    """The training part's scaling, as the model saw its inputs: (x - offset) / scale."""
    if not scaler:
        return x.astype(np.float32)
    offset = np.asarray(scaler["offset"], np.float32)
    return ((x - offset) / np.asarray(scaler["scale"], np.float32)).astype(np.float32)


def rows_to_features(
    rows: Sequence[Mapping[str, Any]] | str, preprocessing: Mapping[str, Any]
) -> np.ndarray:
    """What the network takes: records (or CSV text) encoded and scaled, float32."""
    table = preprocessing.get("table")
    if not table:
        raise RowError(
            [
                (
                    (),
                    "the model's files carry no column encoding (not trained on an uploaded table, "
                    "or trained before models kept one)",
                    "no_table",
                )
            ]
        )
    records = read_csv_rows(rows, table) if isinstance(rows, str) else rows
    return scale(encode_records(records, table), preprocessing.get("scaler"))


def _category(index: Mapping[str, int], text: str) -> int | None:
    """The category `text` names: exactly (a Parquet file's text is not trimmed at upload), or
    without its surrounding spaces (a CSV file's cells are)."""
    i = index.get(text)
    return index.get(text.strip()) if i is None else i


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


BOOLEAN_TEXT = {"true": 1.0, "false": 0.0}  # as a CSV export of a Parquet table writes them


def _as_number(value: Any) -> float | None:
    """A number as at upload, where a Parquet boolean column is read as 1 and 0."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if (flag := BOOLEAN_TEXT.get(value.strip().lower())) is not None:
            return flag
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    # Beyond float32's range the network would see inf (and answer NaN): not a number it takes.
    return number if math.isfinite(number) and abs(number) <= FLOAT32_MAX else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
