"""Compare runs side by side: the spec values that differ, and each per-epoch series's final and
best values, aligned on a common axis for plotting: the epoch (runs of different batch sizes
or data sizes line up epoch by epoch) or the step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidArgumentError, NotFoundError
from core.series import NO_BEST, higher_is_better, is_epoch_series
from core.spec.paths import flatten
from core.store.metrics import Series, read_series
from core.store.models import Job, MetricRollup

MIN_JOBS, MAX_JOBS = 2, 20
UNCOMPARED_PARAMS = ("name", "tags")  # labels, not settings of the run
Axis = Literal["epoch", "step"]
AXES: tuple[Axis, ...] = ("epoch", "step")


@dataclass(frozen=True)
class MetricSummary:
    final: float
    best: float | None  # None: no finite value, or a series with no best (lr)
    best_step: int | None


@dataclass(frozen=True)
class AlignedSeries:
    x: list[int]  # the union of every job's epochs (or steps), sorted
    values: list[list[float | None]]  # per job, one value (None where it has none) per x
    # The step of each aligned point, kept for clients that read `steps` (before `x`): x itself
    # when aligned by step; by epoch, the latest step among the jobs' last points of that epoch.
    steps: list[int]


@dataclass(frozen=True)
class Comparison:
    jobs: list[Job]  # in the order asked
    params: dict[str, list[Any]]  # flattened spec path -> value per job (None: missing there)
    metrics: dict[str, list[MetricSummary | None]]
    series: dict[str, AlignedSeries]
    x: Axis = "epoch"


def compare_jobs(
    session: Session, *, job_ids: list[str], project: str | None = None, x: Axis = "epoch"
) -> Comparison:
    """`x="epoch"` aligns the series by epoch (the last point of each epoch), `x="step"` by step."""
    if x not in AXES:
        raise InvalidArgumentError(f"x: expected one of {', '.join(AXES)}. Received: {x!r}")
    jobs = _jobs_in_order(session, job_ids, project)
    params = differing_params([job.spec for job in jobs])
    names = _epoch_series_names(session, job_ids)
    per_job = [
        {s.name: s for s in read_series(session, job_id=job_id, names=names)} if names else {}
        for job_id in job_ids
    ]
    metrics = {name: [_summary(name, runs.get(name)) for runs in per_job] for name in names}
    series = {name: _aligned([runs.get(name) for runs in per_job], x) for name in names}
    return Comparison(jobs=jobs, params=params, metrics=metrics, series=series, x=x)


def _jobs_in_order(session: Session, job_ids: list[str], project: str | None) -> list[Job]:
    if not MIN_JOBS <= len(job_ids) <= MAX_JOBS:
        raise InvalidArgumentError(
            f"ids: expected {MIN_JOBS} to {MAX_JOBS} job ids. Received: {len(job_ids)}"
        )
    repeated = sorted({i for i in job_ids if job_ids.count(i) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"ids: expected distinct job ids. Received more than once: {', '.join(repeated)}"
        )
    query = select(Job).where(Job.id.in_(job_ids), Job.deleted_at.is_(None))
    if project is not None:  # another project's job is reported as unknown
        query = query.where(Job.project == project)
    found = {job.id: job for job in session.scalars(query)}
    for job_id in job_ids:
        if job_id not in found:
            raise NotFoundError(f"no job with id {job_id!r}")
    return [found[job_id] for job_id in job_ids]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not in a spec
        return a is b
    return a == b


def differing_params(specs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The flattened paths whose values are not all equal, in order of first appearance."""
    flats = [
        flatten({k: v for k, v in spec.items() if k not in UNCOMPARED_PARAMS}) for spec in specs
    ]
    paths = list(dict.fromkeys(path for flat in flats for path in flat))
    differing: dict[str, list[Any]] = {}
    for path in paths:
        values = [flat.get(path) for flat in flats]
        if not all(_same(values[0], v) for v in values[1:]):
            differing[path] = values
    return differing


def _epoch_series_names(session: Session, job_ids: list[str]) -> list[str]:
    """Named from the rollups (one row per ROLLUP_STEPS points), not by scanning every point."""
    names = session.scalars(
        select(MetricRollup.name).where(MetricRollup.job_id.in_(job_ids)).distinct()
    )
    return sorted(name for name in names if is_epoch_series(name))


def _summary(name: str, series: Series | None) -> MetricSummary | None:
    if series is None or not series.values:
        return None
    final = series.values[-1]
    finite = [(v, s) for v, s in zip(series.values, series.steps, strict=True) if math.isfinite(v)]
    if name in NO_BEST or not finite:
        return MetricSummary(final=final, best=None, best_step=None)
    pick = max if higher_is_better(name) else min
    best = pick(v for v, _ in finite)
    best_step = next(s for v, s in finite if v == best)  # the first step that reached it
    return MetricSummary(final=final, best=best, best_step=best_step)


def _aligned(runs: list[Series | None], x: Axis) -> AlignedSeries:
    # Points come in step order, so an epoch's last point wins when it has several.
    by_x = [
        dict(zip(s.epochs if x == "epoch" else s.steps, s.values, strict=True))
        if s is not None
        else {}
        for s in runs
    ]
    axis = sorted({key for run in by_x for key in run})
    values = [[run.get(key) for key in axis] for run in by_x]
    if x == "step":
        return AlignedSeries(x=axis, values=values, steps=axis)
    last_step: dict[int, int] = {}
    for s in (s for s in runs if s is not None):
        for epoch, step in zip(s.epochs, s.steps, strict=True):
            last_step[epoch] = max(step, last_step.get(epoch, step))
    return AlignedSeries(x=axis, values=values, steps=[last_step[e] for e in axis])
