"""Metric points: batched, idempotent writes and series reads.

A write is an upsert on (job, name, step), so a retried or replayed batch never duplicates a
point. NaN and infinities are kept exactly through `ValueKind`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.store.base import upsert_insert, utcnow
from core.store.models import ROLLUP_STEPS, MetricPoint, MetricRollup, ValueKind

# Names the store and its readers agree on. Per-step training loss: Keras's TensorBoard name.

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
    insert = upsert_insert(session)
    statement = insert(MetricPoint)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "name", "step"],
        set_={c: statement.excluded[c] for c in ("epoch", "value", "kind", "recorded_at")},
    )
    # A list of parameter sets: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
    # with a cached statement, instead of compiling one huge VALUES clause per call.
    session.execute(statement, list(rows.values()))
    touched: dict[str, tuple[int, int]] = {}
    for name, step in rows:
        low, high = touched.get(name, (step, step))
        touched[name] = (min(low, step), max(high, step))
    for name, (low, high) in touched.items():
        _roll_up(session, insert, job_id, name, _rollup_of(low), _rollup_of(high))


def rebuild_rollups(session: Session, *, job_id: str, name: str) -> None:
    """Recompute every rollup of a series (after points were written other than by write_points)."""
    bounds = session.execute(
        select(func.min(MetricPoint.step), func.max(MetricPoint.step)).where(
            MetricPoint.job_id == job_id, MetricPoint.name == name
        )
    ).one()
    if bounds[0] is not None:
        insert = upsert_insert(session)
        _roll_up(session, insert, job_id, name, _rollup_of(bounds[0]), _rollup_of(bounds[1]))


def _rollup_of(step: int) -> int:
    """Steps count from 1: bucket 0 holds steps 1..ROLLUP_STEPS."""
    return (step - 1) // ROLLUP_STEPS


def _roll_up(session: Session, insert: Any, job_id: str, name: str, first: int, last: int) -> None:
    """Recompute the rollups of buckets `first`..`last` of a series from its points."""
    bucket = (MetricPoint.step - 1) // ROLLUP_STEPS
    source = (
        select(
            MetricPoint.job_id,
            MetricPoint.name,
            bucket,
            func.count(),
            func.min(MetricPoint.value),
            func.max(MetricPoint.value),
            func.max(MetricPoint.step),
        )
        .where(
            MetricPoint.job_id == job_id,
            MetricPoint.name == name,
            MetricPoint.step > first * ROLLUP_STEPS,
            MetricPoint.step <= (last + 1) * ROLLUP_STEPS,
        )
        .group_by(MetricPoint.job_id, MetricPoint.name, bucket)
    )
    columns = ["job_id", "name", "bucket", "points", "min_value", "max_value", "last_step"]
    statement = insert(MetricRollup).from_select(columns, source)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "name", "bucket"],
        set_={c: statement.excluded[c] for c in columns[3:]},
    )
    session.execute(statement)


def delete_points(session: Session, *, job_id: str, after_step: int | None = None) -> None:
    """Every point of a job, or only those after `after_step` (a run resuming from a
    checkpoint at that step writes them again); rollups follow."""
    if after_step is None:
        session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
        session.execute(delete(MetricRollup).where(MetricRollup.job_id == job_id))
        return
    session.execute(
        delete(MetricPoint).where(MetricPoint.job_id == job_id, MetricPoint.step > after_step)
    )
    # Buckets wholly after the step go; the one holding it is recomputed from what is left.
    bucket = _rollup_of(after_step)
    names = session.scalars(
        select(MetricRollup.name).where(
            MetricRollup.job_id == job_id, MetricRollup.bucket == bucket
        )
    ).all()
    session.execute(
        delete(MetricRollup).where(MetricRollup.job_id == job_id, MetricRollup.bucket > bucket)
    )
    insert = upsert_insert(session)
    for name in names:
        _roll_up(session, insert, job_id, name, bucket, bucket)


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
    counts = _counts(session, job_id, names, where, rolled_up=since_step is None)
    short = [name for name, n, _, _ in counts if n <= max_points]
    series = (
        {s.name: s for s in _raw(session, [*where, MetricPoint.name.in_(short)])} if short else {}
    )
    for name, n, first, last in counts:
        if n <= max_points:
            continue
        named = [*where, MetricPoint.name == name]
        width = -(-(last - first + 1) // max_points)  # steps per output bucket, rounded up
        if since_step is None and width >= ROLLUP_STEPS:
            series[name] = _from_rollups(session, job_id, named, name, first, last, max_points)
        else:
            series[name] = _buckets(session, named, name, first, last, max_points)
    return [series[name] for name, *_ in counts]


def _counts(
    session: Session, job_id: str, names: list[str] | None, where: list[Any], rolled_up: bool
) -> list[Any]:
    """(name, points, first step, last step) per series. Without a step filter the rollups
    hold the counts (no scan of every point); the first step is one index lookup."""
    if not rolled_up:
        return session.execute(
            select(
                MetricPoint.name,
                func.count(),
                func.min(MetricPoint.step),
                func.max(MetricPoint.step),
            )
            .where(*where)
            .group_by(MetricPoint.name)
            .order_by(MetricPoint.name)
        ).all()
    query = select(
        MetricRollup.name, func.sum(MetricRollup.points), func.max(MetricRollup.last_step)
    )
    query = query.where(MetricRollup.job_id == job_id)
    if names:
        query = query.where(MetricRollup.name.in_(names))
    rows = session.execute(query.group_by(MetricRollup.name).order_by(MetricRollup.name)).all()
    first_step = select(func.min(MetricPoint.step)).where(MetricPoint.job_id == job_id)
    return [
        (name, n, session.scalar(first_step.where(MetricPoint.name == name)), last)
        for name, n, last in rows
    ]


def _from_rollups(
    session: Session,
    job_id: str,
    where: list[Any],
    name: str,
    first: int,
    last: int,
    max_points: int,
) -> Series:
    """Merge whole rollup buckets into at most `max_points` output buckets: reads about
    points / ROLLUP_STEPS rows instead of every point."""
    span = _rollup_of(last) - _rollup_of(first) + 1  # rollup buckets in the series
    per_output = -(-span // max_points)
    group = ((MetricRollup.bucket - _rollup_of(first)) // per_output).label("group")
    rows = session.execute(
        select(
            group,
            func.min(MetricRollup.min_value),
            func.max(MetricRollup.max_value),
            func.max(MetricRollup.last_step),
        )
        .where(MetricRollup.job_id == job_id, MetricRollup.name == name)
        .group_by(group)
        .order_by(group)
    ).all()
    return _with_last_points(session, where, name, rows)


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
    return _with_last_points(session, where, name, rows)


def _with_last_points(session: Session, where: list[Any], name: str, rows: list[Any]) -> Series:
    """Rows of (bucket, min, max, last step) → a Series with each bucket's last point."""
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
