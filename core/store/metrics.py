"""Metric points: batched, idempotent writes and series reads.

A write is an upsert on (job, name, step), so a retried or replayed batch never duplicates a
point. NaN and infinities are kept exactly through `ValueKind`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.store.base import utcnow
from core.store.models import MetricPoint, ValueKind

_KIND_OF = {math.inf: ValueKind.POS_INF, -math.inf: ValueKind.NEG_INF}
_VALUE_OF = {ValueKind.NAN: math.nan, ValueKind.POS_INF: math.inf, ValueKind.NEG_INF: -math.inf}


def encode_value(value: float) -> tuple[float | None, int]:
    if math.isnan(value):
        return None, ValueKind.NAN
    if math.isinf(value):
        return None, _KIND_OF[value]
    return value, ValueKind.FINITE


def decode_value(value: float | None, kind: int) -> float:
    return _VALUE_OF[kind] if kind != ValueKind.FINITE else float(value)  # type: ignore[arg-type]


def write_points(
    session: Session, *, job_id: str, points: list[tuple[str, int, int, float]]
) -> None:
    """Upsert (name, step, epoch, value) points in one statement."""
    if not points:
        return
    now = utcnow()
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for name, step, epoch, value in points:  # last write wins within a batch too
        stored, kind = encode_value(value)
        rows[(name, step)] = {
            "job_id": job_id,
            "name": name,
            "step": step,
            "epoch": epoch,
            "value": stored,
            "kind": kind,
            "recorded_at": now,
        }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(MetricPoint)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "name", "step"],
        set_={c: statement.excluded[c] for c in ("epoch", "value", "kind", "recorded_at")},
    )
    # A list of parameter sets: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
    # with a cached statement, instead of compiling one huge VALUES clause per call.
    session.execute(statement, list(rows.values()))


def delete_points(session: Session, *, job_id: str) -> None:
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))


@dataclass
class Series:
    name: str
    steps: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def read_series(session: Session, *, job_id: str, names: list[str] | None = None) -> list[Series]:
    query = select(
        MetricPoint.name, MetricPoint.step, MetricPoint.epoch, MetricPoint.value, MetricPoint.kind
    ).where(MetricPoint.job_id == job_id)
    if names:
        query = query.where(MetricPoint.name.in_(names))
    series: dict[str, Series] = {}
    for name, step, epoch, value, kind in session.execute(
        query.order_by(MetricPoint.name, MetricPoint.step)
    ):
        s = series.setdefault(name, Series(name))
        s.steps.append(step)
        s.epochs.append(epoch)
        s.values.append(decode_value(value, kind))
    return list(series.values())
