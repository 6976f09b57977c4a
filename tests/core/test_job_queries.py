"""Listing jobs by spec parameters and ordering them by a metric, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from sqlalchemy.orm import Session

from core.errors import InvalidArgumentError
from core.spec import JobSpec
from core.spec.paths import parse_path
from core.store import jobs
from core.store.db import session_factory
from core.store.job_queries import (
    JobOrder,
    ParamFilter,
    param_filters,
    parse_order,
    parse_value,
)
from core.store.metrics import write_points
from core.store.models import Job
from tests.specs import DIGITS


@pytest.fixture
def session(database_url: str) -> Session:
    with session_factory(database_url)() as s:
        yield s


def spec(optimizer: str, batch_size: int | str, units: int) -> dict[str, Any]:
    raw = copy.deepcopy(DIGITS)
    raw["training"]["optimizer"] = {"type": optimizer, "learning_rate": 0.001}
    raw["training"]["batch_size"] = batch_size
    raw["model"]["layers"][0]["units"] = units
    return JobSpec.model_validate(raw).model_dump(mode="json")


# name: (optimizer, batch size, first units, val_accuracy points by step, or None)
RUNS: dict[str, tuple[str, int | str, int, list[float] | None]] = {
    "a": ("adam", 64, 128, [0.5, 0.9]),
    "b": ("sgd", 64, 64, [0.99, 0.95]),  # its best value is not its final one
    "c": ("adam", 32, 128, [0.8]),
    "d": ("adam", "full", 128, None),  # no val_accuracy series at all
    "e": ("sgd", 32, 256, [0.7, 0.9]),  # ties with a
    "f": ("adam", 32, 64, [0.6, math.nan]),  # ends in NaN: no comparable value, sorts last
    "g": ("sgd", 64, 64, [0.1, math.inf]),
}


@pytest.fixture
def runs(session: Session) -> dict[str, Job]:
    made = {}
    for name, (optimizer, batch_size, units, accuracy) in RUNS.items():
        job = jobs.create_job(
            session,
            spec=spec(optimizer, batch_size, units),
            name=name,
            tags=[],
            queue="cpu",
            summary={},
            epochs=2,
        )
        points = [("loss", 1, 1, 1.0)]
        points += [("val_accuracy", 10 * s, s, v) for s, v in enumerate(accuracy or [], 1)]
        write_points(session, job_id=job.id, points=points)
        session.commit()
        made[name] = job
    return made


def names(session: Session, *filters: tuple[str, str], **kwargs: Any) -> list[str]:
    found, _ = jobs.list_jobs(session, params=param_filters(filters), limit=100, **kwargs)
    return [j.name for j in found]


def all_pages(session: Session, order: JobOrder, size: int, **kwargs: Any) -> list[str]:
    seen, cursor = [], None
    while True:
        page, cursor = jobs.list_jobs(session, order=order, limit=size, cursor=cursor, **kwargs)
        seen += [j.name for j in page]
        if cursor is None:
            return seen


def test_parsing_paths_and_values() -> None:
    assert parse_path("model.layers[0].units") == ("model", "layers", 0, "units")
    assert parse_path("model.layers.2.rate") == ("model", "layers", 2, "rate")
    for bad in ("", ".a", "a.", "a..b", "a[x]", "a[0", "a b", "a.-1"):
        with pytest.raises(ValueError):
            parse_path(bad)
    assert [parse_value(v) for v in ("64", "0.5", "true", "null", '"64"', "adam", "NaN")] == [
        64,
        0.5,
        True,
        None,
        "64",
        "adam",
        "NaN",
    ]
    assert param_filters([("tag", "x"), ("param.training.batch_size", "64")]) == [
        ParamFilter(("training", "batch_size"), 64)
    ]
    assert parse_order("metric.val_accuracy", "asc") == JobOrder("val_accuracy", False)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("param.", "1", "expected a spec path"),
        ("param.training..seed", "1", "param.training..seed"),
        ("params.training.seed", "1", "unknown query parameter 'params.training.seed'"),
        ("metric.val_accuracy", "0.9", "unknown query parameter 'metric.val_accuracy'"),
        ("param.model.input_shape", "[64]", "expected a number"),
    ],
)
def test_bad_filters_are_refused_with_their_name(name: str, value: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"{says}"):
        param_filters([(name, value)])


def test_bad_orders_are_refused() -> None:
    for order_by, order in (("metric.", "desc"), ("val_accuracy", "desc"), ("created_at", "up")):
        with pytest.raises(InvalidArgumentError):
            parse_order(order_by, order)


def test_filters_compare_json_values(session: Session, runs: dict[str, Job]) -> None:
    assert names(session, ("param.training.optimizer.type", "adam")) == ["f", "d", "c", "a"]
    assert names(session, ("param.training.batch_size", "64")) == ["g", "b", "a"]
    assert names(session, ("param.training.batch_size", "64.0")) == ["g", "b", "a"]
    assert names(session, ("param.training.batch_size", '"64"')) == []  # a string is not 64
    assert names(session, ("param.training.batch_size", "full")) == ["d"]
    assert names(session, ("param.model.layers[0].units", "128")) == ["d", "c", "a"]
    assert names(session, ("param.model.layers.0.units", "64")) == ["g", "f", "b"]
    assert names(session, ("param.model.layers[1].rate", "0.2")) == list("gfedcba")
    assert names(session, ("param.training.shuffle", "true")) == list("gfedcba")
    assert names(session, ("param.training.shuffle", "1")) == []  # a number is not true
    assert names(session, ("param.model.input_shape", "null")) == list("gfedcba")
    assert names(session, ("param.training.optimizer.learning_rate", "1e-3")) == list("gfedcba")
    assert names(session, ("param.training.optimizer.nesterov", "null")) == []  # adam lacks it
    assert names(session, ("param.model.layers[9].units", "128")) == []  # no such layer
    assert names(session, ("param.training.seed", str(10**30))) == []


def test_filters_combine(session: Session, runs: dict[str, Job]) -> None:
    adam_32 = [("param.training.optimizer.type", "adam"), ("param.training.batch_size", "32")]
    assert names(session, *adam_32) == ["f", "c"]
    assert names(session, *adam_32, ("param.model.layers[0].units", "128")) == ["c"]
    assert names(session, *adam_32, status="running") == []
    jobs.request_cancel(session, job_id=runs["c"].id)
    session.commit()
    assert names(session, *adam_32, status="cancelled") == ["c"]


def test_ordering_by_a_final_metric_puts_jobs_without_it_last(
    session: Session, runs: dict[str, Job]
) -> None:
    best_first = JobOrder("val_accuracy", descending=True)
    worst_first = JobOrder("val_accuracy", descending=False)
    # ties (a, e at 0.9) break on creation, in the order's direction
    assert names(session, order=best_first) == ["g", "b", "e", "a", "c", "f", "d"]
    assert names(session, order=worst_first) == ["c", "a", "e", "b", "g", "d", "f"]
    assert names(session, order=JobOrder("no_such_series")) == list("gfedcba")
    assert names(session, order=JobOrder(None, descending=False)) == list("abcdefg")
    sgd = [("param.training.optimizer.type", "sgd")]
    assert names(session, *sgd, order=worst_first) == ["e", "b", "g"]


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_pages_follow_a_metric_order(
    session: Session, runs: dict[str, Job], descending: bool, size: int
) -> None:
    for order in (JobOrder("val_accuracy", descending), JobOrder(None, descending)):
        assert all_pages(session, order, size) == names(session, order=order)
    adam = param_filters([("param.training.optimizer.type", "adam")])
    order = JobOrder("val_accuracy", descending)
    assert all_pages(session, order, size, params=adam) == names(
        session, ("param.training.optimizer.type", "adam"), order=order
    )


def test_a_cursor_only_continues_its_own_order(session: Session, runs: dict[str, Job]) -> None:
    _, cursor = jobs.list_jobs(session, order=JobOrder("val_accuracy"), limit=2)
    assert cursor is not None
    for other in (JobOrder(), JobOrder("val_accuracy", False), JobOrder("loss")):
        with pytest.raises(InvalidArgumentError, match="another order"):
            jobs.list_jobs(session, order=other, cursor=cursor)
    with pytest.raises(InvalidArgumentError, match="next_cursor"):
        jobs.list_jobs(session, cursor="not-a-cursor")
