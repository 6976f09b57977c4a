"""/v1/compare: runs side by side (differing spec values, final/best metrics, aligned series)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.deps import SessionDep
from api.schemas import json_float
from core.store.compare import MAX_JOBS, AlignedSeries, MetricSummary, compare_jobs

router = APIRouter(prefix="/v1/compare", tags=["compare"])
IDS_PATTERN = rf"^\s*[^,\s]+\s*(,\s*[^,\s]+\s*){{1,{MAX_JOBS - 1}}}$"


class ComparedJob(BaseModel):
    id: str
    name: str
    status: str


class MetricSummaryOut(BaseModel):
    final: float | str
    best: float | str | None
    best_step: int | None

    @classmethod
    def of(cls, m: MetricSummary | None) -> MetricSummaryOut | None:
        if m is None:
            return None
        best = json_float(m.best) if m.best is not None else None
        return cls(final=json_float(m.final), best=best, best_step=m.best_step)


class AlignedSeriesOut(BaseModel):
    x: list[int]  # epochs or steps, as the comparison's `x` says
    values: list[list[float | str | None]]  # per job, aligned to `x`; null where it has none
    steps: list[int] = Field(
        description="deprecated (read `x`): the step of each aligned point; by epoch, the latest "
        "step among the jobs' last points of that epoch"
    )

    @classmethod
    def of(cls, s: AlignedSeries) -> AlignedSeriesOut:
        values = [[json_float(v) if v is not None else None for v in run] for run in s.values]
        return cls(x=s.x, values=values, steps=s.steps)


class ComparisonOut(BaseModel):
    jobs: list[ComparedJob]
    params: dict[str, list[Any]]
    metrics: dict[str, list[MetricSummaryOut | None]]
    series: dict[str, AlignedSeriesOut]
    x: Literal["epoch", "step"]  # the axis the series are aligned on


@router.get("", response_model=ComparisonOut)
def compare(
    session: SessionDep,
    me: CallerDep,
    ids: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_JOBS * 40,
            json_schema_extra={"pattern": IDS_PATTERN},  # checked below, with a clearer message
            description=f"comma-separated job ids, 2 to {MAX_JOBS} distinct ones, in the order "
            "to show",
        ),
    ],
    x: Annotated[
        Literal["epoch", "step"],
        Query(description="align the series by epoch (each epoch's last point) or by step"),
    ] = "epoch",
) -> ComparisonOut:
    job_ids = [i.strip() for i in ids.split(",") if i.strip()]
    c = compare_jobs(session, job_ids=job_ids, project=me.project, x=x)
    return ComparisonOut(
        jobs=[ComparedJob(id=j.id, name=j.name, status=j.status) for j in c.jobs],
        params=c.params,
        metrics={name: [MetricSummaryOut.of(m) for m in runs] for name, runs in c.metrics.items()},
        series={name: AlignedSeriesOut.of(s) for name, s in c.series.items()},
        x=c.x,
    )
