"""Job listing queries: filters on the stored spec, ordering by a metric, and keyset cursors.

A filter `param.<path>=<value>` compares one value of the normalized spec as JSON: the query
value is read as JSON when it parses to a scalar (`64`, `0.001`, `true`, `null`, `"64"`), else as
a plain string (`adam`). A number matches a number (64 matches 64.0), never the string "64".

`order_by=metric.<name>` orders jobs by the final value of a series (the point with the largest
step). Jobs without the series (or whose final value is NaN) sort last in either direction;
infinities sort as the extremes they are. Ties break on (created_at, id), in the same direction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from core.errors import InvalidArgumentError
from core.spec.paths import Path, parse_path
from core.store.models import Job, MetricPoint, ValueKind
from core.text import storable

PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."
_CURSOR_HELP = "cursor: expected a next_cursor value from a previous page"


@dataclass(frozen=True)
class ParamFilter:
    """`path` into the spec JSON (keys and list indices) must hold `value` (a JSON scalar)."""

    path: Path
    value: str | int | float | bool | None


@dataclass(frozen=True)
class JobOrder:
    metric: str | None = None  # None: by created_at
    descending: bool = True

    @property
    def fingerprint(self) -> str:
        """Short tag of the order, kept in a cursor so it cannot be replayed under another."""
        text = f"{self.metric or ''}|{self.descending}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]


# --- parsing the query -----------------------------------------------------------------------


def parse_value(text: str) -> str | int | float | bool | None:
    """JSON when it parses to a finite scalar, otherwise the text itself as a string."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: `[[[[…`, refused by the caller
        return text
    if isinstance(value, float) and not math.isfinite(value):  # json accepts NaN, Infinity
        return text
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return float(value)  # beyond what the stores bind as an integer
    return value if value is None or isinstance(value, str | int | float | bool) else text


def param_filters(query: Iterable[tuple[str, str]]) -> list[ParamFilter]:
    """The `param.*` filters among query items; an unknown `param*`/`metric*` name is refused."""
    filters = []
    for name, raw in query:
        if not name.startswith(("param", "metric")):
            continue
        if not name.startswith(PARAM_PREFIX):
            raise InvalidArgumentError(
                f"unknown query parameter {name!r}; expected param.<spec path>=<value> filters, "
                "and order_by=metric.<series name> to order by a metric"
            )
        try:
            path = parse_path(name.removeprefix(PARAM_PREFIX))
        except ValueError:
            raise InvalidArgumentError(
                f"{name}: expected a spec path such as param.training.optimizer.type or "
                f"param.model.layers[0].units; received {name!r}"
            ) from None
        value = parse_value(raw)
        if isinstance(value, str) and raw.lstrip().startswith(("[", "{")):
            raise InvalidArgumentError(
                f"{name}: expected a number, true, false, null or a string; received {raw[:80]!r}"
            )
        if isinstance(value, str) and not storable(value):
            raise InvalidArgumentError(
                f"{name}: expected text without NUL characters or lone surrogates "
                f"(\\u0000, \\ud800), which cannot be stored; received {raw[:80]!r}"
            )
        filters.append(ParamFilter(path, value))
    return filters


def parse_order(order_by: str, order: str) -> JobOrder:
    if order not in ("asc", "desc"):
        raise InvalidArgumentError(f"order: expected 'asc' or 'desc'; received {order!r}")
    descending = order == "desc"
    if order_by == "created_at":
        return JobOrder(None, descending)
    name = order_by.removeprefix(METRIC_PREFIX)
    if order_by.startswith(METRIC_PREFIX) and 0 < len(name) <= 128:
        return JobOrder(name, descending)
    raise InvalidArgumentError(
        f"order_by: expected 'created_at' or 'metric.<series name>'; received {order_by!r}"
    )


# --- building the query --------------------------------------------------------------------


def param_condition(dialect: str, spec_filter: ParamFilter) -> ColumnElement[bool]:
    """The spec holds this JSON value at this path (JSONB on PostgreSQL, JSON1 on SQLite)."""
    path, value = spec_filter.path, spec_filter.value
    if dialect == "postgresql":
        found = func.jsonb_extract_path(Job.spec, *map(str, path), type_=JSONB)
        return found == cast(literal(json.dumps(value), String), JSONB)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in path)
    kind = func.json_type(Job.spec, where)
    if value is None or isinstance(value, bool):
        return kind == json.dumps(value)  # 'null', 'true', 'false'
    held = func.json_extract(Job.spec, where)
    if isinstance(value, str):
        return (kind == "text") & (held == value)
    return kind.in_(["integer", "real"]) & (held == value)


def final_value(name: str) -> ColumnElement[float | None]:
    """Each job's last value of a series, correlated on Job.id; NULL if absent or NaN."""
    value = case(
        (MetricPoint.kind == ValueKind.POS_INF, literal(math.inf)),
        (MetricPoint.kind == ValueKind.NEG_INF, literal(-math.inf)),
        else_=MetricPoint.value,
    )
    return (
        select(value)
        .where(MetricPoint.job_id == Job.id, MetricPoint.name == name)
        .order_by(MetricPoint.step.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )


def _beyond(column: Any, bound: Any, descending: bool) -> ColumnElement[bool]:
    return column < bound if descending else column > bound


def _after_time(created: datetime, job_id: str, descending: bool) -> ColumnElement[bool]:
    return _beyond(Job.created_at, created, descending) | (
        (Job.created_at == created) & _beyond(Job.id, job_id, descending)
    )


def order_clauses(order: JobOrder, key: ColumnElement[Any] | None) -> list[Any]:
    """Keys, then (created_at, id), all in one direction; for a key, jobs without one last."""
    columns = [Job.created_at, Job.id] if key is None else [key, Job.created_at, Job.id]
    ordered = [c.desc() if order.descending else c.asc() for c in columns]
    return ordered if key is None else [key.is_(None), *ordered]


def after_cursor(order: JobOrder, key: ColumnElement[Any] | None, cursor: str) -> Any:
    """Rows that come after the cursor's row in this order (missing values last)."""
    value, created, job_id = decode_cursor(cursor, order)
    later = _after_time(created, job_id, order.descending)
    if key is None:
        return later
    if value is None:  # within the trailing jobs without a value
        return key.is_(None) & later
    valued = _beyond(key, value, order.descending) | ((key == value) & later)
    return key.is_(None) | (key.is_not(None) & valued)


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(order: JobOrder, value: float | None, job: Job) -> str:
    row = [order.fingerprint, value, job.created_at.isoformat(), job.id]
    return base64.urlsafe_b64encode(json.dumps(row, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, order: JobOrder) -> tuple[float | None, datetime, str]:
    try:
        tag, value, created, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidArgumentError(_CURSOR_HELP) from None
    well_formed = (
        isinstance(job_id, str)
        and at.tzinfo is not None
        and (value is None or (isinstance(value, int | float) and not isinstance(value, bool)))
    )
    if not well_formed:
        raise InvalidArgumentError(_CURSOR_HELP)
    if tag != order.fingerprint:
        raise InvalidArgumentError(
            "cursor: it belongs to a listing in another order; pass the same order_by and order"
        )
    return (None if value is None else float(value)), at, job_id
