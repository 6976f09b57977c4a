"""CSV uploads: UTF-8, comma-separated, a header line naming the columns.

Read a line at a time, in time linear in the file's size and in bounded memory: a line is at
most MAX_LINE_CHARS long; the header at most `max_columns` columns, refused as soon as it is
read; rows go in blocks of ROWS_PER_BLOCK, each block's cells becoming float64 numbers at once
(text stays text, each distinct value held once), and the deadline is checked every block.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from core.data.tables import Column, encode_table, is_number, too_many_columns
from core.data.upload_types import Encoding, UploadOptions, refuse
from core.errors import SpecIssue, UnsupportedFormatError

MAX_LINE_CHARS = 1 << 23  # one line of a CSV file, in characters (8 Mi)
ROWS_PER_BLOCK = 4096

# A block of a column: float64 numbers (NaN for empty cells), or its stripped cells as text.
Part = np.ndarray | list[str]


def read_csv(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    header, parts = _read(path, options, None)
    mixed = [i for i, p in enumerate(parts) if _is_mixed(p)]
    if mixed:  # numbers in some blocks, text in others: the text of the numbers is read again
        _, again = _read(path, options, set(mixed))
        for i in mixed:
            parts[i] = again[i]
    columns: list[Column] = []
    for column in parts:
        options.check_time()
        columns.append(_column(column))
    return encode_table(header, columns, options)


def _read(
    path: Path, options: UploadOptions, as_text: set[int] | None
) -> tuple[list[str], list[list[Part]]]:
    """(header, each column's blocks); the columns in `as_text` kept as text throughout."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return _parts(csv.reader(_lines(f, options)), options, as_text)
    except UnicodeDecodeError:
        raise _not_text() from None
    except csv.Error as e:
        raise refuse(("file",), f"not a readable CSV: {e}") from None


def _not_text() -> UnsupportedFormatError:
    return UnsupportedFormatError(
        [
            SpecIssue(
                ("file",),
                "the file is not UTF-8 text; expected a CSV (UTF-8, comma-separated, a "
                "header line), an NPZ (numpy.savez) or a Parquet file",
                "wrong_format",
            )
        ]
    )


def _lines(f: TextIO, options: UploadOptions) -> Iterator[str]:
    """The file's lines, each bounded; the first one's columns counted before it is split."""
    number = 0
    while line := f.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise refuse(
                ("file", number),
                f"line {number} is longer than {MAX_LINE_CHARS:,} characters; expected a CSV "
                "line per row",
                "too_long",
            )
        if "\x00" in line:
            raise _not_text()
        if number == 1 and '"' not in line and line.count(",") >= options.max_columns:
            raise too_many_columns(line.count(",") + 1, options)
        if number % ROWS_PER_BLOCK == 0:
            options.check_time()
        yield line


def _parts(
    rows: Iterator[list[str]], options: UploadOptions, as_text: set[int] | None
) -> tuple[list[str], list[list[Part]]]:
    first = next((row for row in rows if row), None)
    if first is None:
        raise refuse(("file",), "the file is empty; expected a header line and rows", "empty")
    if len(first) > options.max_columns:
        raise too_many_columns(len(first), options)
    header = [name.strip() for name in first]
    parts: list[list[Part]] = [[] for _ in header]
    texts: list[dict[str, str]] = [{} for _ in header]  # each distinct text held once
    block: list[list[str]] = []
    number = 0
    for row in rows:
        if not row:
            continue
        number += 1
        if len(row) != len(header):
            raise refuse(
                ("file", number),
                f"row {number} has {len(row)} fields; the header has {len(header)}",
                "wrong_shape",
            )
        block.append(row)
        if len(block) == ROWS_PER_BLOCK:
            _add_block(parts, texts, block, options, as_text)
    _add_block(parts, texts, block, options, as_text)
    return header, parts


def _add_block(
    parts: list[list[Part]],
    texts: list[dict[str, str]],
    block: list[list[str]],
    options: UploadOptions,
    as_text: set[int] | None,
) -> None:
    options.check_time()
    if not block:
        return
    for i, cells in enumerate(zip(*block, strict=True)):
        if as_text is not None and i not in as_text:
            continue
        stripped = [c.strip() for c in cells]
        part = _numbers(stripped) if as_text is None else None
        if part is None:
            seen = texts[i]
            part = [seen.setdefault(c, c) for c in stripped]
        parts[i].append(part)
    block.clear()


def _numbers(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 (NaN where empty), or None when one is text."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    if all(c == "" or is_number(c) for c in cells):  # numbers with gaps
        return np.array([float(c) if c else np.nan for c in cells], dtype=np.float64)
    return None


def _is_mixed(column: list[Part]) -> bool:
    kinds = {isinstance(part, np.ndarray) for part in column}
    return len(kinds) == 2


def _column(column: list[Part]) -> Column:
    if not column:
        return np.zeros(0, dtype=np.float64)
    if all(isinstance(part, np.ndarray) for part in column):
        return np.concatenate(column)
    return [c or None for part in column for c in part]
