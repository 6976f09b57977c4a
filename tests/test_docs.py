"""docs/vocabulary.md stays true: every registered name appears, every example is a valid spec."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.data import DATASETS
from core.nn.activations import ACTIVATIONS
from core.nn.initializers import INITIALIZERS
from core.settings import Settings
from core.spec import JobSpec
from core.spec.layers import LAYER_TYPES
from core.training.keras_callbacks import CALLBACKS
from core.training.losses import LOSSES
from core.training.metrics import METRICS
from core.training.optimizers import OPTIMIZERS
from core.training.plan import plan_job
from core.training.schedules import SCHEDULES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "vocabulary.md").read_text()
EXAMPLES = re.findall(r"```json\n(.*?)```", DOC, flags=re.S)


@pytest.mark.parametrize(
    "names",
    [
        LAYER_TYPES,
        ACTIVATIONS.names(),
        INITIALIZERS.names(),
        LOSSES.names(),
        METRICS.names(),
        OPTIMIZERS.names(),
        SCHEDULES.names(),
        CALLBACKS.names(),
        DATASETS.names(),
    ],
)
def test_every_registered_name_is_documented(names: list[str]) -> None:
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert missing == [], f"add these to docs/vocabulary.md: {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_every_example_is_a_spec_that_passes_submission(example: str) -> None:
    plan_job(JobSpec.model_validate(json.loads(example)), Settings())


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5
