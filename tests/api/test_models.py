"""A trained job's model: the weights download and prediction, against a real store (SQLite and
PostgreSQL). Jobs are trained in-process with `Runner`, so real weights exist; no Celery."""

from __future__ import annotations

import copy
import io
import json
import math

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file

from api.app import create_app
from core import serving
from core.artifacts import FolderArtifacts
from core.data import DATASETS, DatasetInfo
from core.nn.network import build_network
from core.running.runner import Runner
from core.settings import Settings
from core.spec import JobSpec
from core.store import jobs as job_store
from core.store.db import session_factory
from core.training.plan import plan_job
from tests.specs import DIGITS

REGRESSION = {
    "name": "sine",
    "dataset": {"name": "regression", "n_samples": 200, "validation_split": 0.2},
    "model": {
        "layers": [
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 1},
        ]
    },
    "training": {"loss": "mean_squared_error", "epochs": 3, "batch_size": 32, "seed": 0},
}


def digits(epochs: int) -> dict:
    spec = copy.deepcopy(DIGITS)
    spec["training"]["epochs"] = epochs
    return spec


def submit(settings: Settings, spec: dict) -> str:
    parsed = JobSpec.model_validate(spec)
    with session_factory(settings.database_url).begin() as session:
        job = job_store.create_job(
            session,
            spec=parsed.model_dump(mode="json"),
            name=parsed.name or "job",
            tags=[],
            queue="cpu",
            summary=plan_job(parsed, settings).summary(),
            epochs=parsed.training.epochs,
        )
        return job.id


def train(settings: Settings, spec: dict) -> str:
    job_id = submit(settings, spec)
    assert Runner(session_factory(settings.database_url), settings, "w").run(job_id) == "succeeded"
    return job_id


def stored(settings: Settings, job_id: str):
    with session_factory(settings.database_url)() as session:
        return job_store.get_job(session, job_id=job_id)


def digits_samples(n: int) -> tuple[list[list[float]], list[int]]:
    arrays = DATASETS.get("digits").load(JobSpec.model_validate(DIGITS).dataset)
    return arrays.x[:n].tolist(), arrays.y[:n].tolist()


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def digits_job(settings: Settings) -> str:
    return train(settings, digits(epochs=5))


def test_the_download_carries_the_stored_weights_and_the_normalized_spec(
    client: TestClient, settings: Settings, digits_job: str
) -> None:
    r = client.get(f"/v1/jobs/{digits_job}/model", params={"format": "safetensors"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="digits-mlp-{digits_job[:8]}.safetensors"'
    )
    default = client.get(f"/v1/jobs/{digits_job}/model")  # safetensors is the default format
    assert default.status_code == 200 and len(default.content) == len(r.content)

    job = stored(settings, digits_job)
    downloaded = load_safetensors(r.content)
    saved = load_file(settings.artifacts_dir / job.summary["model"]["weights"])
    assert downloaded.keys() == saved.keys() and downloaded
    assert all(torch.equal(downloaded[k], saved[k]) for k in saved)

    path = settings.artifacts_dir / "downloaded.safetensors"
    path.write_bytes(r.content)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    assert metadata["epochal.format"] == "1"
    assert json.loads(metadata["epochal.spec"]) == job.spec
    # The file alone rebuilds the network.
    spec = JobSpec.model_validate_json(metadata["epochal.spec"])
    build_network(spec.model, (64,)).load_state_dict(downloaded, strict=True)


def test_predictions_are_the_networks_own_and_mostly_right(
    client: TestClient, settings: Settings, digits_job: str
) -> None:
    x, y = digits_samples(50)
    r = client.post(f"/v1/jobs/{digits_job}/predict", json={"inputs": x})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == digits_job and len(body["outputs"]) == 50

    job = stored(settings, digits_job)
    network = build_network(JobSpec.model_validate(job.spec).model, (64,))
    network.load_state_dict(load_file(settings.artifacts_dir / job.summary["model"]["weights"]))
    with torch.no_grad():
        expected = network.eval()(torch.tensor(x)).argmax(dim=1).tolist()
    labels = [o["label"] for o in body["outputs"]]
    assert labels == expected
    for o in body["outputs"]:
        assert len(o["probabilities"]) == 10 and math.isclose(
            sum(o["probabilities"]), 1, abs_tol=1e-5
        )
        assert o["label"] == max(range(10), key=o["probabilities"].__getitem__)
    assert sum(a == b for a, b in zip(labels, y, strict=True)) / 50 > 0.8

    # The second request is served by the network the first one loaded.
    cache = client.app.state.model_cache
    [key] = cache._items
    first = cache._items[key].network
    again = client.post(f"/v1/jobs/{digits_job}/predict", json={"inputs": x[:2]}).json()
    for o, before in zip(again["outputs"], body["outputs"], strict=False):
        assert o["label"] == before["label"]
        assert o["probabilities"] == pytest.approx(before["probabilities"], abs=1e-6)
    assert cache._items[key].network is first and len(cache) == 1


def test_a_regression_job_predicts_values(client: TestClient, settings: Settings) -> None:
    job_id = train(settings, REGRESSION)
    r = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0], [1.5], [-1.5]]})
    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert len(outputs) == 3
    assert all(set(o) == {"value"} and len(o["value"]) == 1 for o in outputs)
    assert all(math.isfinite(o["value"][0]) for o in outputs)


def test_a_single_sigmoid_unit_gives_both_class_probabilities(
    client: TestClient, settings: Settings
) -> None:
    spec = {
        "dataset": {"name": "moons", "n_samples": 200, "validation_split": 0.2},
        "model": {
            "layers": [
                {"type": "dense", "units": 8, "activation": "relu"},
                {"type": "dense", "units": 1, "activation": "sigmoid"},
            ]
        },
        "training": {"loss": "binary_crossentropy", "epochs": 2, "seed": 0},
    }
    job_id = train(settings, spec)
    r = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0, 0.5], [1.0, -0.5]]})
    assert r.status_code == 200, r.text
    for o in r.json()["outputs"]:
        p0, p1 = o["probabilities"]
        assert math.isclose(p0 + p1, 1, abs_tol=1e-6) and o["label"] == int(p1 > 0.5)


def problem_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


def test_an_unknown_job_is_404(client: TestClient) -> None:
    assert problem_of(client.get("/v1/jobs/nope/model"), 404)["type"].endswith("not_found")
    r = client.post("/v1/jobs/nope/predict", json={"inputs": [[0.0]]})
    assert "no job with id 'nope'" in problem_of(r, 404)["detail"]


def test_a_job_that_has_not_succeeded_has_no_model(client: TestClient, settings: Settings) -> None:
    job_id = submit(settings, digits(epochs=1))
    detail = f"job {job_id} is queued; a model exists once it has succeeded"
    assert problem_of(client.get(f"/v1/jobs/{job_id}/model"), 409)["detail"] == detail
    r = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0] * 64]})
    assert problem_of(r, 409)["detail"] == detail


def test_an_unknown_format_is_422_naming_the_known_ones(
    client: TestClient, settings: Settings
) -> None:
    job_id = submit(settings, digits(epochs=1))
    body = problem_of(client.get(f"/v1/jobs/{job_id}/model", params={"format": "keras"}), 422)
    [error] = body["errors"]
    assert error["loc"] == ["query", "format"]
    assert error["msg"] == "Input should be 'safetensors', 'onnx' or 'torchscript'"


def test_a_job_that_has_not_succeeded_has_no_export(client: TestClient, settings: Settings) -> None:
    job_id = submit(settings, digits(epochs=1))
    for fmt in ("onnx", "torchscript"):
        r = client.get(f"/v1/jobs/{job_id}/model", params={"format": fmt})
        assert problem_of(r, 409)["detail"] == (
            f"job {job_id} is queued; a model exists once it has succeeded"
        )
    assert not list(settings.artifacts_dir.glob(f"jobs/{job_id}/**/*"))  # nothing half-written


def run_export(fmt: str, data: bytes, x: torch.Tensor) -> tuple[np.ndarray, dict[str, str]]:
    """The downloaded file's outputs on `x`, and its metadata."""
    if fmt == "onnx":
        model = onnx.load_model_from_string(data)
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        [outputs] = session.run(["outputs"], {"inputs": x.numpy()})
        return outputs, {p.key: p.value for p in model.metadata_props}
    extra = dict.fromkeys(["epochal.spec", "epochal.format", "epochal.job_id"], "")
    module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    with torch.no_grad():
        outputs = module(x).numpy()
    return outputs, {k: v.decode() for k, v in extra.items()}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_export_runs_as_the_network_and_is_made_once(
    client: TestClient, settings: Settings, digits_job: str, fmt: str
) -> None:
    r = client.get(f"/v1/jobs/{digits_job}/model", params={"format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    suffix = {"onnx": "onnx", "torchscript": "pt"}[fmt]
    assert r.headers["content-disposition"] == (
        f'attachment; filename="digits-mlp-{digits_job[:8]}.{suffix}"'
    )

    job = stored(settings, digits_job)
    network = build_network(JobSpec.model_validate(job.spec).model, (64,))
    network.load_state_dict(load_file(settings.artifacts_dir / job.summary["model"]["weights"]))
    x = torch.tensor(digits_samples(5)[0])
    with torch.no_grad():
        expected = network.eval()(x).numpy()
    outputs, metadata = run_export(fmt, r.content, x)
    assert np.abs(outputs - expected).max() <= 1e-5
    assert json.loads(metadata["epochal.spec"]) == job.spec
    assert metadata["epochal.format"] == "1" and metadata["epochal.job_id"] == digits_job

    # Cached beside the weights; the second download reads that file, not a new export.
    cached = settings.artifacts_dir / f"jobs/{digits_job}/attempt-1/model.{suffix}"
    assert cached.read_bytes() == r.content
    before = cached.stat()
    again = client.get(f"/v1/jobs/{digits_job}/model", params={"format": fmt})
    assert again.status_code == 200 and again.content == r.content
    after = cached.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


BAD_INPUTS = {
    "empty batch": ([], ["inputs"], "expected at least one input; received none"),
    "too many": ([[0.0] * 64] * 10_001, ["inputs"], "expected at most 10,000 inputs"),
    "short input": (
        [[0.0] * 64, [0.0] * 63],
        ["inputs", 1],
        "inputs[1] has shape (63,); expected (64,)",
    ),
    "nested too deep": (
        [[[0.0] * 64]],
        ["inputs", 0],
        "inputs[0] has shape (1, 64); expected (64,)",
    ),
    "a scalar": ([1.0], ["inputs", 0], "inputs[0] has shape (); expected (64,)"),
    "a string": ([[0.0] * 63 + ["7"]], ["inputs", 0], 'inputs[0][63] is "7"; expected a number'),
    "a boolean": ([[True] + [0.0] * 63], ["inputs", 0], "inputs[0][0] is true; expected a number"),
    "null": ([[None] * 64], ["inputs", 0], "inputs[0][0] is null; expected a number"),
    "too large for float32": ([[1e300] * 64], ["inputs", 0], "outside float32's range"),
}


def test_inputs_that_do_not_fit_the_model_are_422(client: TestClient, settings: Settings) -> None:
    job_id = train(settings, digits(epochs=1))
    for case, (inputs, loc, msg) in BAD_INPUTS.items():
        r = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": inputs})
        body = problem_of(r, 422)
        assert body["type"] == "urn:epochal:problem:invalid_request", case
        [error] = body["errors"]
        assert error["loc"] == loc and msg in error["msg"], (case, error)
    # NaN and infinities: JSON has no literal for them, but Python's parser accepts these.
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = '{"inputs": [[' + ", ".join(["0"] * 63 + [literal]) + "]]}"
        r = client.post(
            f"/v1/jobs/{job_id}/predict", content=raw, headers={"content-type": "application/json"}
        )
        [error] = problem_of(r, 422)["errors"]
        assert error["loc"] == ["inputs", 0] and "expected a finite number" in error["msg"]


def test_the_cache_keeps_the_most_recently_used(tmp_path) -> None:
    cache: serving.LRUCache[str, object] = serving.LRUCache(2)
    built: list[str] = []

    def build(key: str):
        return lambda: built.append(key) or object()

    a = cache.get("a", build("a"))
    assert cache.get("a", build("a")) is a and built == ["a"]
    cache.get("b", build("b"))
    cache.get("a", build("a"))  # a is now the most recent
    cache.get("c", build("c"))  # so b goes
    assert "a" in cache and "b" not in cache and "c" in cache and len(cache) == 2
    assert cache.get("a", build("a")) is a and built == ["a", "b", "c"]
    with pytest.raises(ValueError, match="expected a positive maxsize"):
        serving.LRUCache(0)


def test_a_loaded_model_is_on_the_cpu_in_eval_mode(settings: Settings) -> None:
    job_id = train(settings, digits(epochs=1))
    ref = serving.model_ref(stored(settings, job_id))
    model = serving.load_model(ref, FolderArtifacts(settings.artifacts_dir), settings)
    assert not model.network.training
    assert all(p.device.type == "cpu" for p in model.network.parameters())
    assert model.info.feature_shape == (64,) and model.probabilistic


def test_inputs_are_checked_value_by_value() -> None:
    def issue(inputs: list, info: DatasetInfo) -> tuple[list, str]:
        with pytest.raises(serving.InputsError) as e:
            serving.parse_inputs(inputs, info)
        [found] = e.value.issues
        return list(found.loc), found.msg

    image = DatasetInfo("classification", (2, 2, 1), 1, 10)
    assert serving.parse_inputs([[[[0], [1]], [[2], [3.5]]]], image).shape == (1, 2, 2, 1)
    ragged = [[[0], [1]], [[2]]]
    assert issue([ragged], image) == (
        ["inputs", 0],
        "inputs[0][1] has shape (1, 1); expected (2, 1) "
        "(an input has the model's input shape (2, 2, 1))",
    )
    with pytest.raises(serving.InputsError) as e:  # each bad input is named
        serving.parse_inputs([ragged, [[[0], [1]], [[2], [3]]], ragged], image)
    assert [i.loc for i in e.value.issues] == [("inputs", 0), ("inputs", 2)]
    assert issue([[10**400, 0]], DatasetInfo("regression", (2,), 1)) == (
        ["inputs", 0],
        "inputs[0][0] is 1000000000000000000000000000000000000...; expected a finite number",
    )
    tokens = DatasetInfo("classification", (3, 1), 1, 2, ids=(0, 1))
    assert serving.parse_inputs([[[0], [1], [1]]], tokens).tolist() == [[[0.0], [1.0], [1.0]]]
    assert (
        issue([[[0], [2], [1]]], tokens)[1]
        == "inputs[0][1][0] is 2; expected an integer id in [0, 1]"
    )
    assert issue([[[0], [0.5], [1]]], tokens)[1].endswith("expected an integer id in [0, 1]")
