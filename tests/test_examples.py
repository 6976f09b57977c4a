"""examples/ stays true: every example is a spec that passes submission, and the MLP learns;
every sweep in examples/sweeps/ has a base that passes submission with each of its values set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from core.settings import Settings
from core.spec import JobSpec
from core.spec.paths import flatten, format_path, parse_path, with_values
from core.training.plan import plan_job
from core.training.session import train_spec

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.iterdir() if p.suffix in (".yaml", ".json"))
SWEEPS = sorted(p for p in (EXAMPLES_DIR / "sweeps").iterdir() if p.suffix in (".yaml", ".json"))


def load(path: Path) -> Any:
    text = path.read_text()
    return yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_a_spec_that_passes_submission(path: Path) -> None:
    spec = JobSpec.model_validate(load(path))
    plan_job(spec, Settings())
    assert spec.name and spec.tags, "every example sets its name and tags"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_explained(path: Path) -> None:
    if path.suffix == ".yaml":
        assert path.read_text().startswith("#"), "start with a comment saying what it shows"
    assert f"`{path.name}`" in (EXAMPLES_DIR / "README.md").read_text()


def test_the_digits_mlp_learns_in_a_few_epochs() -> None:
    raw = load(EXAMPLES_DIR / "digits_mlp.yaml")
    raw["training"]["epochs"] = 3
    spec = JobSpec.model_validate(raw)
    result = train_spec(spec, Settings(), device=torch.device("cpu"))
    assert len(result.history.epochs) == 3
    assert result.history.epochs[-1]["val_accuracy"] > 0.8


# --- sweeps ---------------------------------------------------------------------------------
# Checked with JobSpec and spec paths until the SweepSpec model validates the whole file.


def test_there_are_sweep_examples() -> None:
    assert {p.name for p in SWEEPS} >= {
        "grid_lr_batch.yaml",
        "random_hyperband_cnn.yaml",
        "bayes_mlp.yaml",
    }


def candidate_values(distribution: dict[str, Any]) -> list[Any]:
    """The values a sweep parameter can take that bound the rest: its list, or its range's ends."""
    if "values" in distribution:
        return list(distribution["values"])
    if "value" in distribution:
        return [distribution["value"]]
    kind = distribution["distribution"]
    if kind == "normal":
        return [distribution["mu"]]
    assert kind in ("uniform", "log_uniform_values", "int_uniform", "q_uniform"), kind
    return [distribution["min"], distribution["max"]]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_sweep_example_has_a_base_that_passes_submission_with_each_value(
    path: Path,
) -> None:
    sweep = load(path)
    assert sweep["name"] and "examples" in sweep["tags"], "every example sets its name and tags"
    assert sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"]["goal"] in ("maximize", "minimize")
    assert sweep["parameters"], "a sweep searches over something"
    base = JobSpec.model_validate(sweep["base"])
    plan_job(base, Settings())
    for name, distribution in sweep["parameters"].items():
        if sweep["method"] == "grid":
            assert "values" in distribution or "value" in distribution, name
        for value in candidate_values(distribution):
            # with_values refuses a path through a list or scalar; extra="forbid" a misspelt key.
            trial = JobSpec.model_validate(with_values(sweep["base"], {name: value}))
            plan_job(trial, Settings())
            # ... and the value is where the path says in the normalized spec, not dropped.
            leaves = flatten(trial.model_dump(mode="json"))
            assert leaves[format_path(parse_path(name))] == value, name


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_sweep_example_is_explained(path: Path) -> None:
    assert path.read_text().startswith("#"), "start with a comment saying what it shows"
    assert f"`sweeps/{path.name}`" in (EXAMPLES_DIR / "README.md").read_text()
