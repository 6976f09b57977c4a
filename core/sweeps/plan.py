"""From a SweepSpec to trial specs, and the checks that refuse a sweep before anything is stored.

Trials are built on the base as the user wrote it (defaults left out), so a parameter may swap
a whole object (`training.optimizer: {values: [{type: adam}, {type: sgd}]}`); a path through a
part the user left to its defaults (`training.optimizer.learning_rate` with no optimizer given)
first copies that part from the normalized base. Each trial spec is checked as a submitted job
is (`JobSpec` validation, then `plan_job`), and its problems are reported under the parameter
paths that caused them.
"""

from __future__ import annotations

import copy
import itertools
import math
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core.data.catalog import UploadedDatasets
from core.errors import SpecError, SpecIssue
from core.series import no_best, scores, validation_hint
from core.settings import Settings
from core.spec.issues import issues_of
from core.spec.job import JobSpec
from core.spec.paths import format_path, parse_path, with_values
from core.sweeps import space
from core.sweeps.spec import ENUMERABLE, MAX_TRIALS, Normal, SweepError, SweepSpec
from core.training.lr_finder import finder_only
from core.training.plan import JobPlan, plan_job

MAX_PROBES = 256  # trial specs checked at submission, at most


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec  # with seeds filled in
    base: dict[str, Any]  # the base as sent, with its seed: what trials are built on
    run_cap: int
    grid_size: int | None


def plan_sweep(
    spec: SweepSpec, settings: Settings, uploads: UploadedDatasets | None = None
) -> SweepPlan:
    """Refuse a sweep that cannot run (SweepError, every issue located); else its plan."""
    issues = _method_issues(spec)
    if issues:
        raise SweepError(issues)
    spec = _seeded(spec)
    base = spec.base.model_dump(mode="json", exclude_unset=True)
    base.setdefault("training", {})["seed"] = spec.base.training.seed
    grid = space.grid_size(spec.parameters) if spec.method == "grid" else None
    run_cap = min(spec.run_cap or grid, grid) if grid is not None else spec.run_cap
    assert run_cap is not None
    if run_cap > MAX_TRIALS:
        raise SweepError(
            [
                SpecIssue(
                    ("parameters",),
                    f"the grid has {grid:,} points; set run_cap (at most {MAX_TRIALS}) "
                    "to run part of it",
                    "too_large",
                )
            ]
        )
    plan = SweepPlan(spec, base, run_cap, grid)
    for params in _probes(plan):
        job = build_trial(plan.spec, plan.base, params, number=0)
        _check_metric(plan.spec, check_trial(job, params, settings, uploads), params)
    return plan


def _method_issues(spec: SweepSpec) -> list[SpecIssue]:
    issues = []
    for path, p in spec.parameters.items():
        where = ("parameters", path)
        if spec.method == "grid" and not isinstance(p, ENUMERABLE):
            issues.append(
                SpecIssue(
                    where,
                    f"grid needs values, value, int_uniform or q_uniform; {p.distribution} is "
                    "continuous (use method random or bayes)",
                    "not_enumerable",
                )
            )
        if spec.method == "bayes" and isinstance(p, Normal):
            issues.append(
                SpecIssue(
                    where,
                    "bayes samples bounded distributions; use uniform or log_uniform_values "
                    "with min and max instead of normal",
                    "not_searchable",
                )
            )
    if spec.method != "grid" and spec.run_cap is None:
        issues.append(
            SpecIssue(("run_cap",), f"method {spec.method} needs run_cap, the number of trials")
        )
    return issues


def _seeded(spec: SweepSpec) -> SweepSpec:
    """The sampler seed and the trials' training seed drawn now if absent, and stored."""
    update: dict[str, Any] = {}
    if spec.seed is None:
        update["seed"] = secrets.randbelow(2**31)
    if spec.base.training.seed is None:
        training = spec.base.training.model_copy(update={"seed": secrets.randbelow(2**31)})
        base = spec.base.model_copy(update={"training": training})
        update["base"] = base
    return spec.model_copy(update=update) if update else spec


def _probes(plan: SweepPlan) -> list[dict[str, Any]]:
    """Trial parameters checked at submission: every grid point (up to run_cap); otherwise the
    combinations of each parameter's probes (its choices, or its bounds), or, when those are
    too many, each parameter's probes with the others at their first."""
    parameters = plan.spec.parameters
    if plan.grid_size is not None and plan.run_cap <= MAX_PROBES:
        return [space.grid_point(parameters, i) for i in range(plan.run_cap)]
    probes = {path: space.probes(p)[:MAX_PROBES] for path, p in parameters.items()}
    if math.prod(len(v) for v in probes.values()) <= MAX_PROBES:
        return [
            dict(zip(probes, combo, strict=True)) for combo in itertools.product(*probes.values())
        ]
    first = {path: values[0] for path, values in probes.items()}
    return [{**first, path: v} for path, values in probes.items() for v in values]


def build_trial(
    spec: SweepSpec, base: dict[str, Any], params: dict[str, Any], *, number: int
) -> dict[str, Any]:
    """The trial's JobSpec as JSON: base + parameter values, named and tagged for the sweep."""
    normalized = spec.base.model_dump(mode="json")
    trial = copy.deepcopy(base)
    for path in params:
        _fill_defaults(trial, normalized, parse_path(path))
    try:
        trial = with_values(trial, params)
    except ValueError as e:
        path = next((p for p in params if str(e).startswith((p, repr(p)))), None)
        loc = ("parameters", path) if path else ("parameters",)
        raise SweepError([SpecIssue(loc, str(e), "bad_path")]) from None
    name = spec.name or spec.base.name or f"{spec.base.dataset.name}-sweep"
    trial["name"] = f"{name[:190]}-{number}"
    trial["tags"] = list(dict.fromkeys([*trial.get("tags", []), *spec.tags]))
    return trial


def _fill_defaults(trial: dict[str, Any], normalized: dict[str, Any], path: tuple) -> None:
    """Copy from the normalized base the first missing object on the way to `path`'s parent."""
    node, full = trial, normalized
    for part in path[:-1]:
        if not isinstance(node, dict | list) or not isinstance(full, dict | list):
            return
        try:
            full = full[part]
        except (KeyError, IndexError, TypeError):
            return
        if isinstance(node, dict) and part not in node:
            node[part] = copy.deepcopy(full)
            return
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return


def check_trial(
    trial: dict[str, Any],
    params: dict[str, Any],
    settings: Settings,
    uploads: UploadedDatasets | None = None,
) -> JobPlan:
    """The trial spec validated and planned as a submitted job is, and one that trains (not the
    learning-rate range test alone: it would have no metric to rank); SweepError otherwise."""
    try:
        job = JobSpec.model_validate(trial)
        planned = plan_job(job, settings, uploads)
    except ValidationError as e:
        issues = issues_of(e, trial)
    except SpecError as e:
        issues = list(e.issues)
    else:
        if not finder_only(job):
            return planned
        issues = [FINDER_ONLY]
    raise SweepError([_locate(issue, params) for issue in issues])


FINDER_ONLY = SpecIssue(
    ("training", "optimizer", "learning_rate"),
    'with training.lr_finder and a learning_rate other than "suggested" a trial is the '
    "learning-rate range test alone and trains nothing; set learning_rate "
    '"suggested" to train each trial at its own suggestion',
)


def _locate(issue: SpecIssue, params: dict[str, Any]) -> SpecIssue:
    """Under the parameter whose path leads to (or through) the problem, with the values that
    made this trial; under `base` otherwise."""
    at = format_path(tuple(issue.loc)) if issue.loc else ""
    shown = ", ".join(f"{p}={v!r}" for p, v in params.items())
    for path in params:
        if (
            at == path
            or at.startswith((f"{path}.", f"{path}["))
            or path.startswith((f"{at}.", f"{at}["))
        ):
            return SpecIssue(("parameters", path), f"with {shown}: {at}: {issue.msg}", issue.type)
    return SpecIssue(("base", *issue.loc), f"with {shown}: {issue.msg}", issue.type)


def _check_metric(spec: SweepSpec, trial: JobPlan, params: dict[str, Any]) -> None:
    """The metric among what the trial logs per epoch: the same answer a callback's monitor
    gets (`core.series.epoch_series`, through the trial's plan): a score, not `lr`."""
    recorded = trial.series
    why = no_best(spec.metric.name, recorded)
    if why is not None:
        issue = SpecIssue(
            ("metric", "name"), f"a sweep cannot optimize {spec.metric.name!r}: {why}"
        )
        raise SweepError([issue])
    if spec.metric.name not in recorded:
        shown = ", ".join(f"{p}={v!r}" for p, v in params.items())
        raise SweepError(
            [
                SpecIssue(
                    ("metric", "name"),
                    f"the trials do not record {spec.metric.name!r} (with {shown}, they record "
                    f"{', '.join(scores(recorded))})" + validation_hint(spec.metric.name, recorded),
                    "unknown_metric",
                )
            ]
        )
