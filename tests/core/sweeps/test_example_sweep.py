"""examples/sweeps/grid_digits_mlp.yaml stays true: it passes the sweep's submission checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.settings import Settings
from core.sweeps.plan import plan_sweep
from core.sweeps.spec import SweepSpec

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sweeps" / "grid_digits_mlp.yaml"


def test_the_grid_example_plans_six_trials() -> None:
    plan = plan_sweep(SweepSpec.model_validate(yaml.safe_load(EXAMPLE.read_text())), Settings())
    assert (plan.run_cap, plan.grid_size) == (6, 6)
