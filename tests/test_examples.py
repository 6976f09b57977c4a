"""examples/ stays true: every example is a spec that passes submission, and the MLP learns;
every sweep in examples/sweeps/ passes the sweep submission checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from core.settings import Settings
from core.spec import JobSpec
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec
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


def test_there_are_sweep_examples() -> None:
    assert {p.name for p in SWEEPS} >= {
        "grid_digits_mlp.yaml",
        "grid_lr_batch.yaml",
        "random_hyperband_cnn.yaml",
        "bayes_mlp.yaml",
    }


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_sweep_example_passes_the_sweep_submission_checks(path: Path) -> None:
    """plan_sweep validates the SweepSpec and every trial the search space can produce (each
    grid point; each range's probe values), as POST /v1/sweeps does."""
    spec = SweepSpec.model_validate(load(path))
    plan = plan_sweep(spec, Settings())
    assert spec.name and "examples" in spec.tags, "every example sets its name and tags"
    if spec.method == "grid":
        assert plan.run_cap == plan.grid_size


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_sweep_example_is_explained(path: Path) -> None:
    assert path.read_text().startswith("#"), "start with a comment saying what it shows"
    assert f"`sweeps/{path.name}`" in (EXAMPLES_DIR / "README.md").read_text()
