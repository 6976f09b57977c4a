"""Bayes sweeps: Optuna's TPE proposes each trial from the results told so far.

The study lives in Optuna's RDB storage, in our database but apart from our tables: Optuna
creates and migrates its own tables (with its own `alembic_version`), so on PostgreSQL they go
to the `optuna` schema (migration 0005 creates it) and on SQLite to a sibling file
(`var/epochal.db` -> `var/epochal.optuna.db`). Separate storage also means Optuna's writes
never wait on the sweep row the controller holds locked while it asks.

The study is named after the sweep. Every ask builds a TPE sampler seeded from (sweep seed,
trial number), so proposals are reproducible and no sampler state lives in a process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from core.store.db import normalize_url
from core.sweeps.space import q_value
from core.sweeps.spec import (
    Categorical,
    Constant,
    IntUniform,
    LogUniformValues,
    ParameterSpec,
    QUniform,
    Uniform,
)

SCHEMA = "optuna"
_storages: dict[str, optuna.storages.RDBStorage] = {}
_lock = threading.Lock()

optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage_url(database_url: str) -> tuple[str, dict[str, Any]]:
    """Where Optuna's tables go for our database: (SQLAlchemy URL, engine options)."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return "sqlite://", {}
        stem, dot, suffix = url.database.rpartition(".")
        path = f"{stem}.optuna.{suffix}" if dot else f"{url.database}.optuna"
        return url.set(database=path).render_as_string(hide_password=False), {
            "connect_args": {"timeout": 30}
        }
    options = {"connect_args": {"options": f"-csearch_path={SCHEMA}"}, "pool_pre_ping": True}
    return url.render_as_string(hide_password=False), options


def storage(database_url: str) -> optuna.storages.RDBStorage:
    """One storage per database per process (building one checks and creates Optuna's tables)."""
    with _lock:
        if database_url not in _storages:
            url, options = storage_url(database_url)
            _storages[database_url] = optuna.storages.RDBStorage(url, engine_kwargs=options)
        return _storages[database_url]


def study(database_url: str, sweep_id: str, goal: str) -> optuna.Study:
    return optuna.create_study(
        study_name=sweep_id,
        storage=storage(database_url),
        direction=goal,
        load_if_exists=True,
    )


def tpe_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def distributions(parameters: Mapping[str, ParameterSpec]) -> dict[str, BaseDistribution]:
    """Optuna's view of the swept parameters (constants are not searched). A list of values is
    searched by index, so any JSON value (an object, a list) can be a choice; q_uniform by
    the multiple k of q."""
    found: dict[str, BaseDistribution] = {}
    for path, p in parameters.items():
        if isinstance(p, Categorical):
            found[path] = CategoricalDistribution(list(range(len(p.values))))
        elif isinstance(p, Uniform):
            found[path] = FloatDistribution(p.min, p.max)
        elif isinstance(p, LogUniformValues):
            found[path] = FloatDistribution(p.min, p.max, log=True)
        elif isinstance(p, IntUniform):
            found[path] = IntDistribution(p.min, p.max)
        elif isinstance(p, QUniform):
            found[path] = IntDistribution(*p.steps)
        elif not isinstance(p, Constant):
            raise ValueError(f"{path}: {p.distribution} is not searchable by TPE")
    return found


def values_of(parameters: Mapping[str, ParameterSpec], suggested: Mapping[str, Any]) -> dict:
    """Optuna's suggestion -> the parameter values a trial spec gets."""
    values: dict[str, Any] = {}
    for path, p in parameters.items():
        if isinstance(p, Constant):
            values[path] = p.value
        elif isinstance(p, Categorical):
            values[path] = p.values[suggested[path]]
        elif isinstance(p, QUniform):
            values[path] = q_value(suggested[path], p.q)
        else:
            values[path] = suggested[path]
    return values


def ask(
    database_url: str,
    *,
    sweep_id: str,
    goal: str,
    parameters: Mapping[str, ParameterSpec],
    seed: int,
    startup_trials: int,
) -> tuple[int, dict[str, Any]]:
    """A new trial proposed by TPE: (Optuna's trial number, the parameter values)."""
    s = study(database_url, sweep_id, goal)
    number = len(s.get_trials(deepcopy=False))
    s.sampler = optuna.samplers.TPESampler(
        seed=tpe_seed(seed, number), n_startup_trials=startup_trials
    )
    trial = s.ask(distributions(parameters))
    return trial.number, values_of(parameters, trial.params)


def tell(
    database_url: str, *, sweep_id: str, goal: str, number: int, value: float | None, state: str
) -> None:
    """A finished trial's result: COMPLETE with its value, PRUNED, or FAIL."""
    s = study(database_url, sweep_id, goal)
    if state == "complete" and value is not None:
        s.tell(number, value, skip_if_finished=True)
    else:
        s.tell(
            number,
            state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL,
            skip_if_finished=True,
        )


def running_trials(database_url: str, *, sweep_id: str, goal: str) -> list[int]:
    s = study(database_url, sweep_id, goal)
    return [t.number for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def delete(database_url: str, sweep_id: str) -> None:
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=sweep_id, storage=storage(database_url))
