"""Specs sent as YAML, and the data set catalogue."""

from __future__ import annotations

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.specs import DIGITS


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
