"""Metric points: batched, idempotent writes and series reads.

A write is an upsert on (job, name, step), so a retried or replayed batch never duplicates a
point. NaN and infinities are kept exactly through `ValueKind`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
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
    """A metric's points in step order. Downsampled, each point stands for a bucket of steps:
    `steps`, `epochs` and `values` are the bucket's last point, `min`/`max` its extremes (over
    finite values), so a spike inside a bucket is never hidden."""

    name: str
    steps: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    min: list[float | None] | None = None
    max: list[float | None] | None = None

    def add(self, step: int, epoch: int, value: float) -> None:
        self.steps.append(step)
        self.epochs.append(epoch)
        self.values.append(value)


def read_series(
    session: Session,
    *,
    job_id: str,
    names: list[str] | None = None,
    since_step: int | None = None,
    max_points: int | None = None,
) -> list[Series]:
    """Every series of a job (or those named), after `since_step` if given; a series longer
    than `max_points` comes back as at most that many buckets of consecutive steps."""
    where = [MetricPoint.job_id == job_id]
    if names:
        where.append(MetricPoint.name.in_(names))
    if since_step is not None:
        where.append(MetricPoint.step > since_step)
    if max_points is None:
        return _raw(session, where)
    counts = session.execute(
        select(
            MetricPoint.name, func.count(), func.min(MetricPoint.step), func.max(MetricPoint.step)
        )
        .where(*where)
        .group_by(MetricPoint.name)
        .order_by(MetricPoint.name)
    ).all()
    short = [name for name, n, _, _ in counts if n <= max_points]
    series = (
        {s.name: s for s in _raw(session, [*where, MetricPoint.name.in_(short)])} if short else {}
    )
    for name, n, first, last in counts:
        if n > max_points:
            series[name] = _buckets(
                session, [*where, MetricPoint.name == name], name, first, last, max_points
            )
    return [series[name] for name, *_ in counts]


def _raw(session: Session, where: list[Any]) -> list[Series]:
    query = select(
        MetricPoint.name, MetricPoint.step, MetricPoint.epoch, MetricPoint.value, MetricPoint.kind
    ).where(*where)
    series: dict[str, Series] = {}
    for name, step, epoch, value, kind in session.execute(
        query.order_by(MetricPoint.name, MetricPoint.step)
    ):
        series.setdefault(name, Series(name)).add(step, epoch, decode_value(value, kind))
    return list(series.values())


def _buckets(
    session: Session, where: list[Any], name: str, first: int, last: int, max_points: int
) -> Series:
    """One SQL pass groups the steps into `max_points` equal ranges (min, max, last step each);
    a second fetches each range's last point by primary key."""
    width = -(-(last - first + 1) // max_points)  # ceiling division
    bucket = ((MetricPoint.step - first) // width).label("bucket")  # integer division in SQL
    rows = session.execute(
        select(
            bucket,
            func.min(MetricPoint.value),
            func.max(MetricPoint.value),
            func.max(MetricPoint.step),
        )
        .where(*where)
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    last_steps = [row[3] for row in rows]
    points = {
        step: (epoch, decode_value(value, kind))
        for step, epoch, value, kind in session.execute(
            select(MetricPoint.step, MetricPoint.epoch, MetricPoint.value, MetricPoint.kind).where(
                *where, MetricPoint.step.in_(last_steps)
            )
        )
    }
    series = Series(name, min=[row[1] for row in rows], max=[row[2] for row in rows])
    for step in last_steps:
        series.add(step, *points[step])
    return series
