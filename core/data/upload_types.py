"""What the upload readers share: the options of an upload, the encoding record, refusals."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from core.data.base import Task
from core.errors import SpecIssue, TimedOutError, UploadError

Format = Literal["csv", "npz", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "npz", "parquet")
ZIP_MAGIC, PARQUET_MAGIC = b"PK\x03\x04", b"PAR1"
MAX_FEATURE_RANK = 4  # (frames, height, width, channels)


@dataclass(frozen=True)
class UploadOptions:
    format: Format | None = None  # None: told by the file's first bytes
    target: str | None = None  # the target column (CSV, Parquet)
    task: Task | None = None  # None: inferred from the targets
    min_rows: int = 10
    max_categories: int = 50
    max_values: int = 250_000_000  # rows x features
    max_columns: int = 10_000  # of a CSV or Parquet file
    deadline: float | None = None  # time.monotonic() past which reading stops (TimedOutError)
    timeout: float | None = None  # the limit the deadline came from, to name it

    def check_time(self) -> None:
        """Raise TimedOutError past the deadline: the readers call this in their loops, so a
        hostile file stops the thread that reads it rather than pinning a core."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimedOutError(
                f"reading the upload took longer than {self.timeout or 0:g} s "
                "(EPOCHAL_UPLOAD_TIMEOUT_SECONDS); nothing was stored"
            )


@dataclass(frozen=True)
class Encoding:
    """How the file became arrays: enough to explain a feature index or decode a class id."""

    columns: list[str] = field(default_factory=list)  # the file's feature columns, in order
    features: list[str] = field(default_factory=list)  # one name per feature after encoding
    categories: dict[str, list[str]] = field(default_factory=dict)  # one-hot encoded columns
    classes: list[Any] | None = None  # class id -> the label in the file

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "features": self.features,
            "categories": self.categories,
            "classes": self.classes,
        }


def refuse(loc: tuple[str | int, ...], msg: str, kind: str = "invalid") -> UploadError:
    return UploadError([SpecIssue(loc, msg, kind)])
