"""Specs sent as YAML, and the data set catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.yaml_body import yaml_to_json
from core.settings import Settings
from tests.specs import DIGITS

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_yaml_spec_is_accepted_like_its_json(client: TestClient) -> None:
    r = client.post(
        "/v1/jobs", content=yaml.safe_dump(DIGITS), headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["model"]["layers"][0]["units"] == 128


def test_yaml_errors_are_problems_too(client: TestClient) -> None:
    bad = yaml.safe_dump({**DIGITS, "training": {**DIGITS["training"], "epochs": -1}})
    r = client.post("/v1/jobs", content=bad, headers={"content-type": "text/yaml"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["training", "epochs"]
    r = client.post(
        "/v1/jobs", content=b"model: [unclosed", headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["msg"].startswith("malformed YAML")


def test_yaml_dates_stay_the_text_they_are(client: TestClient) -> None:
    """YAML 1.1 reads `2024-01-01` as a date, which JSON cannot hold: it stays text."""
    body = yaml.safe_dump({**DIGITS, "name": "x", "tags": ["y"]})
    body = body.replace("name: x", "name: 2024-01-01").replace("- y", "- 2024-01-02t10:00:00Z")
    r = client.post("/v1/jobs", content=body, headers={"content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["tags"]) == ("2024-01-01", ["2024-01-02t10:00:00Z"])


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_example_reads_within_the_default_body_limits(path: Path) -> None:
    defaults = Settings.model_fields
    body = path.read_bytes()
    assert len(body) <= defaults["max_body_bytes"].default
    converted = yaml_to_json(
        body,
        max_depth=defaults["max_body_depth"].default,
        max_nodes=defaults["max_yaml_nodes"].default,
    )
    assert json.loads(converted) == yaml.safe_load(body)


def test_the_catalogue_lists_every_built_in_set_with_its_shapes(client: TestClient) -> None:
    catalogue = {d["name"]: d for d in client.get("/v1/datasets").json()}
    assert set(catalogue) >= {
        "digits",
        "iris",
        "wine",
        "breast_cancer",
        "moons",
        "circles",
        "spiral",
        "xor",
        "regression",
    }
    assert catalogue["digits"] | {"description": ""} == {
        "id": "digits",
        "source": "builtin",
        "name": "digits",
        "description": "",
        "task": "classification",
        "feature_shape": [64],
        "samples": 1797,
        "num_classes": 10,
        "target_shape": [],
        "options": [],
    }
    assert catalogue["regression"]["options"] == ["features", "n_samples", "noise"]
    assert client.get("/v1/datasets/spiral").json()["num_classes"] == 3
    assert catalogue["digits_images"]["feature_shape"] == [8, 8, 1]
    assert client.get("/v1/datasets/mnist").status_code == 404
