"""POST /v1/specs/from-keras: the JobSpec of a Keras model, or a 422 located in the Keras JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from core.spec.job import JobSpec

POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}


def dense(name: str, units: int, **config: Any) -> dict[str, Any]:
    config = {"name": name, "trainable": True, "dtype": POLICY, "units": units, **config}
    return {"module": "keras.layers", "class_name": "Dense", "config": config}


MODEL = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "digits_mlp",
        "layers": [dense("hidden", 32, activation="relu"), dense("out", 10, activation="softmax")],
    },
}
BODY = {
    "model": MODEL,
    "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"batch_size": 64, "epochs": 3, "validation_split": 0.2},
    "dataset": "digits",
}  # fmt: skip


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_keras_model_answers_its_normalized_jobspec_and_submits_nothing(client: TestClient):
    r = client.post("/v1/specs/from-keras", json=BODY)
    assert r.status_code == 200, r.text
    spec = r.json()
    assert JobSpec.model_validate(spec).model_dump(mode="json") == spec  # normalized
    assert [(x["type"], x["name"], x["units"]) for x in spec["model"]["layers"]] == [
        ("dense", "hidden", 32),
        ("dense", "out", 10),
    ]
    assert spec["training"]["epochs"] == 3 and spec["dataset"]["validation_split"] == 0.2
    assert spec["training"]["seed"] is None  # drawn at submission, as for any spec
    assert client.get("/v1/jobs").json()["items"] == []
    as_string = client.post("/v1/specs/from-keras", json={**BODY, "model": json.dumps(MODEL)})
    assert as_string.json() == spec


def test_what_epochal_cannot_express_is_a_problem_naming_the_keras_layer_and_argument(
    client: TestClient,
):
    layers = [dense("hidden", 32, autocast=False), dense("out", 0)]
    body = {**BODY, "model": {**MODEL, "config": {"name": "m", "layers": layers}}}
    body["compile"] = {**BODY["compile"], "jit_compile": True}
    r = client.post("/v1/specs/from-keras", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:epochal:problem:invalid_spec"
    assert [e["loc"] for e in problem["errors"]] == [
        ["model", "layers", "hidden", "autocast"],
        ["model", "layers", "out", "units"],
        ["compile", "jit_compile"],
    ]


def test_the_planners_refusals_are_located_in_the_keras_json_too(client: TestClient):
    """digits has 10 classes: a 3-unit softmax output is refused at submission, and here (at
    the loss, which the planner checks against the output)."""
    layers = [dense("hidden", 32), dense("probabilities", 3, activation="softmax")]
    body = {**BODY, "model": {**MODEL, "config": {"name": "m", "layers": layers}}}
    r = client.post("/v1/specs/from-keras", json=body)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["compile", "loss"]]


PIXELS = {"class_name": "InputLayer", "config": {"name": "pixels", "batch_shape": [None, 8]}}
GRID = {"class_name": "Reshape", "config": {"name": "grid", "target_shape": [5, 5]}}


@pytest.mark.parametrize(
    ("layers", "loc"),
    [  # digits has 64 features: an input of 8 is refused at the network's layer 0
        ([PIXELS, dense("hidden", 32)], ["model", "layers", "pixels", "batch_shape"]),
        # 32 values are no 5 x 5 grid: refused at the network's layer 1
        ([dense("hidden", 32), GRID], ["model", "layers", "grid"]),
    ],
)
def test_a_planners_refusal_at_a_layer_names_the_keras_layer(client: TestClient, layers, loc):
    """The planner locates a shape it refuses at the network's layer index; the answer names
    the Keras layer at that index."""
    layers = [*layers, dense("out", 10, activation="softmax")]
    body = {**BODY, "model": {**MODEL, "config": {"name": "m", "layers": layers}}}
    r = client.post("/v1/specs/from-keras", json=body)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [loc]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**BODY, "model": "{not json"}, ["model"]),
        ({**BODY, "model": "[" * 200 + "]" * 200}, ["model"]),
        ({**BODY, "model": {"class_name": "Dense", "config": {}}}, ["model", "class_name"]),
        ({k: v for k, v in BODY.items() if k != "dataset"}, ["dataset"]),
        ({**BODY, "optimizer": "adam"}, ["optimizer"]),
    ],
)
def test_a_body_that_is_no_keras_model_is_refused_by_field(client: TestClient, body, loc):
    r = client.post("/v1/specs/from-keras", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [loc]


def test_the_route_is_in_the_openapi_document_with_its_problems(client: TestClient):
    operation = client.get("/openapi.json").json()["paths"]["/v1/specs/from-keras"]["post"]
    assert {"200", "401", "413", "422"} <= set(operation["responses"])


def test_the_body_is_bounded_as_every_body_is(client: TestClient, settings: Settings):
    big = b" " * (settings.max_body_bytes + 1)
    r = client.post(
        "/v1/specs/from-keras", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["type"] == "urn:epochal:problem:too_large"
