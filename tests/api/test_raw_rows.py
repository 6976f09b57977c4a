"""Predictions on raw rows: a model trained on a CSV with a text column answers its rows as
records and as a CSV body, the same as their encoded vectors, and offline from the downloaded
ONNX file with epochal_client.offline; what does not fit is named. Real store, trained in-process
with `Runner`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient

from api.app import create_app
from core.running.runner import Runner
from core.settings import Settings
from core.store.db import session_factory
from epochal_client.offline import predict_file
from tests.api.test_dataset_uploads import SPECIES, table_csv
from tests.api.test_evaluate import flowers_spec


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def job_id(client: TestClient, settings: Settings) -> str:
    ds = client.post(
        "/v1/datasets",
        params={"target": "species"},
        content=table_csv(rows=60).encode(),
        headers={"content-type": "text/csv"},
    ).json()
    spec = flowers_spec(ds["id"])
    spec["training"]["epochs"] = 5
    job = client.post("/v1/jobs", json=spec).json()["id"]
    assert Runner(session_factory(settings.database_url), settings, "w").run(job) == "succeeded"
    return job


JSON_TYPE = {"content-type": "application/json"}
ROWS_CSV = table_csv(rows=9, seed=1)  # the training header, target included (ignored)


def _records() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ROWS_CSV)))


def _vectors(records: list[dict[str, str]]) -> list[list[float]]:
    """By hand, as at upload: length, width, soil=clay, soil=sand."""
    return [
        [
            float(r["length"]),
            float(r["width"]),
            float(r["soil"] == "clay"),
            float(r["soil"] == "sand"),
        ]
        for r in records
    ]


def _labels(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [o["label"] for o in response.json()["outputs"]]


def test_raw_rows_records_csv_and_onnx_agree_with_vectors(
    client: TestClient, job_id: str, tmp_path: Path
) -> None:
    records = _records()
    url = f"/v1/jobs/{job_id}/predict"
    expected = _labels(client.post(url, json={"inputs": _vectors(records)}))
    as_json = [
        {k: (float(v) if k in ("length", "width") else v) for k, v in r.items()} for r in records
    ]
    assert _labels(client.post(url, json={"records": as_json})) == expected
    assert _labels(client.post(url, json={"records": records})) == expected  # CSV cells as text
    csv_body = client.post(url, content=ROWS_CSV.encode(), headers={"content-type": "text/csv"})
    assert _labels(csv_body) == expected
    assert len(set(expected)) > 1  # the rows are told apart: the comparison means something

    onnx_file = client.get(f"/v1/jobs/{job_id}/model", params={"format": "onnx"}).content
    meta = {p.key: p.value for p in onnx.load_from_string(onnx_file).metadata_props}
    pre = json.loads(meta["epochal.preprocessing"])
    assert pre["table"] == {
        "columns": ["length", "width", "soil"],
        "features": ["length", "width", "soil=clay", "soil=sand"],
        "categories": {"soil": ["clay", "sand"]},
    }
    assert pre["scaler"]["kind"] == "standardize" and len(pre["scaler"]["offset"]) == 4
    assert json.loads(meta["epochal.outputs"]) == {
        "task": "classification",
        "activation": None,
        "probabilistic": True,
        "threshold": 0.5,
    }
    assert json.loads(meta["epochal.inputs"]) == {"shape": [4], "ids": None}
    (tmp_path / "model.onnx").write_bytes(onnx_file)
    (tmp_path / "rows.csv").write_text(ROWS_CSV)
    offline = predict_file(tmp_path / "model.onnx", tmp_path / "rows.csv")
    assert [o["label"] for o in offline["outputs"]] == expected
    assert [o["class"] for o in offline["outputs"]] == [
        o["class"] for o in csv_body.json()["outputs"]
    ]

    weights = client.get(f"/v1/jobs/{job_id}/model").content  # every format carries it
    header = json.loads(weights[8 : 8 + int.from_bytes(weights[:8], "little")])
    assert json.loads(header["__metadata__"]["epochal.preprocessing"])["table"] == pre["table"]
    script = client.get(f"/v1/jobs/{job_id}/model", params={"format": "torchscript"}).content
    extra = {"epochal.preprocessing": ""}
    torch.jit.load(io.BytesIO(script), _extra_files=extra)
    assert json.loads(extra["epochal.preprocessing"])["table"] == pre["table"]


def test_the_readme_offline_snippet_gives_the_api_labels(
    client: TestClient, job_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    snippet = readme.split("<!-- offline-rows -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) <= 11
    (tmp_path / "model.onnx").write_bytes(
        client.get(f"/v1/jobs/{job_id}/model", params={"format": "onnx"}).content
    )
    # As a spreadsheet may save it: a byte-order mark and CRLF line ends.
    (tmp_path / "rows.csv").write_bytes(b"\xef\xbb\xbf" + ROWS_CSV.replace("\n", "\r\n").encode())
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(snippet, "README.md", "exec"), names)
    api = client.post(
        f"/v1/jobs/{job_id}/predict",
        content=ROWS_CSV.encode(),
        headers={"content-type": "text/csv"},
    )
    assert names["labels"] == _labels(api)


def _problem(response: httpx.Response, status: int = 422) -> list[dict]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["errors"]


def test_rows_that_do_not_fit_are_named(client: TestClient, job_id: str) -> None:
    url = f"/v1/jobs/{job_id}/predict"
    good = {"length": 4.0, "width": 2.0, "soil": "clay"}

    [error] = _problem(client.post(url, json={"records": [good, {**good, "soil": "loam"}]}))
    assert error["loc"] == ["records", 1, "soil"] and error["type"] == "unknown_category"
    assert "'loam'" in error["msg"] and "'clay', 'sand'" in error["msg"]

    [error] = _problem(client.post(url, json={"records": [{"length": 4.0, "soil": "sand"}]}))
    assert error["loc"] == ["records", 0, "width"] and error["type"] == "missing_column"
    assert "'length', 'width', 'soil'" in error["msg"]

    [error] = _problem(client.post(url, json={"records": [good, good, {**good, "length": "long"}]}))
    assert error["loc"] == ["records", 2, "length"] and error["type"] == "wrong_type"

    body = b"length,soil\n4.0,clay\n"
    [error] = _problem(client.post(url, content=body, headers={"content-type": "text/csv"}))
    assert error["type"] == "missing_column" and "'width'" in error["msg"]

    body = b"length,width,soil\n4.0,2.0,clay\n4.1,x,sand\n"
    [error] = _problem(client.post(url, content=body, headers={"content-type": "text/csv"}))
    assert error["loc"] == ["csv", 1, "width"] and error["type"] == "wrong_type"

    body = b"length,width,soil\n" + b"4.0,2.0,clay\n" * 10_001  # one past serving.MAX_INPUTS
    [error] = _problem(client.post(url, content=body, headers={"content-type": "text/csv"}))
    assert error["type"] == "too_large" and "10,000" in error["msg"]

    [error] = _problem(client.post(url, json={"inputs": [[4.0, 2.0, 1.0]]}))
    assert error["type"] == "wrong_shape"
    assert "the features, in order: length, width, soil=clay, soil=sand" in error["msg"]


def test_content_types(client: TestClient, job_id: str) -> None:
    r = client.post("/v1/jobs", content=b"<spec/>", headers={"content-type": "application/xml"})
    _problem(r, 415)
    assert "application/json or application/yaml" in r.json()["detail"]
    r = client.post(
        f"/v1/jobs/{job_id}/predict", content=b"x", headers={"content-type": "application/xml"}
    )
    _problem(r, 415)
    assert "text/csv" in r.json()["detail"]
    r = client.post(  # a spec's body is never CSV
        "/v1/jobs", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"}
    )
    _problem(r, 415)

    yaml_spec = b"name: x\ndataset:\n  name: moons\n"
    r = client.post("/v1/jobs", content=yaml_spec, headers={"content-type": "application/json"})
    [error] = _problem(r)
    assert "application/yaml" in error["msg"]
    r = client.post(
        f"/v1/jobs/{job_id}/predict", content=b"records:\n  - {length: 4}\n", headers=JSON_TYPE
    )
    assert "application/yaml" in _problem(r)[0]["msg"]
    r = client.post("/v1/jobs", content=b'{"name": ', headers=JSON_TYPE)
    assert "application/yaml" not in _problem(r)[0]["msg"]  # broken JSON is not YAML


def test_a_model_without_a_table_refuses_records(client: TestClient, settings: Settings) -> None:
    spec = {
        "dataset": {"name": "moons", "n_samples": 40},
        "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
        "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1, "batch_size": 20},
    }
    job = client.post("/v1/jobs", json=spec).json()["id"]
    assert Runner(session_factory(settings.database_url), settings, "w").run(job) == "succeeded"
    [error] = _problem(client.post(f"/v1/jobs/{job}/predict", json={"records": [{"a": 1}]}))
    assert error["type"] == "no_table"
    assert np.isfinite(
        client.post(f"/v1/jobs/{job}/predict", json={"inputs": [[0.0, 0.0]]}).json()["outputs"][0][
            "probabilities"
        ]
    ).all()


def test_parquet_booleans_and_untrimmed_categories_predict_as_uploaded(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """A Parquet boolean column is numeric at upload (1, 0) and its text is kept as it is, spaces
    included: raw rows predict what their encoded vectors predict."""
    rng = np.random.default_rng(0)
    n = 60
    wet = [bool(i % 2) for i in range(n)]
    soil = [[" clay", "sand  "][i % 3 == 0] for i in range(n)]
    length = [float(4 + (i % 3) + rng.normal(0, 0.3)) for i in range(n)]
    species = [SPECIES[i % 3] for i in range(n)]
    path = tmp_path / "t.parquet"
    table = {"length": length, "wet": wet, "soil": soil, "species": species}
    pq.write_table(pa.table(table), path)
    ds = client.post(
        "/v1/datasets",
        params={"target": "species"},
        content=path.read_bytes(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert ds.status_code == 201, ds.text
    spec = flowers_spec(ds.json()["id"])
    spec["training"]["epochs"] = 5
    job = client.post("/v1/jobs", json=spec).json()["id"]
    assert Runner(session_factory(settings.database_url), settings, "w").run(job) == "succeeded"

    url = f"/v1/jobs/{job}/predict"
    records = [{k: table[k][i] for k in table} for i in range(12)]
    # By hand, as at upload: length, wet, soil= clay, soil=sand  (sorted, spaces kept).
    vectors = [
        [r["length"], float(r["wet"]), float(r["soil"] == " clay"), float(r["soil"] != " clay")]
        for r in records
    ]
    expected = client.post(url, json={"inputs": vectors}).json()["outputs"]
    assert [o["label"] for o in expected] == _labels(client.post(url, json={"records": records}))
    assert len({o["label"] for o in expected}) > 1
    # A CSV of the same rows, as pandas writes the table: True/False, the spaces quoted or not.
    lines = ["length,wet,soil,species"] + [
        f'{r["length"]!r},{r["wet"]},"{r["soil"]}",{r["species"]}' for r in records
    ]
    body = ("\n".join(lines) + "\n").encode()
    assert _labels(client.post(url, content=body, headers={"content-type": "text/csv"})) == [
        o["label"] for o in expected
    ]
    [error] = _problem(client.post(url, json={"records": [{**records[0], "soil": "clay"}]}))
    assert error["type"] == "unknown_category" and "' clay', 'sand  '" in error["msg"]
