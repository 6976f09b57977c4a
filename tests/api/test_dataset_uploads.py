"""POST/GET/DELETE /v1/datasets on a real store (SQLite and PostgreSQL): uploads are stored whole
or not at all, identical uploads are found again, bad files are refused with nothing left."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.settings import Settings
from core.store.db import session_factory
from core.store.models import Dataset
from tests.conftest import make_settings

SPECIES = ["setosa", "versicolor", "virginica"]


def table_csv(rows: int = 30, seed: int = 0) -> str:
    """A flower table: two measurements, a text column (soil), and a text label."""
    rng = np.random.default_rng(seed)
    lines = ["length,width,soil,species"]
    for i in range(rows):
        k = i % 3
        lines.append(
            f"{4 + k + rng.normal(0, 0.3):.3f},{2 + k * 0.5 + rng.normal(0, 0.2):.3f},"
            f"{['clay', 'sand'][i % 2]},{SPECIES[k]}"
        )
    return "\n".join(lines) + "\n"


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def images(n: int = 20) -> bytes:
    rng = np.random.default_rng(0)
    return npz_bytes(x=rng.random((n, 4, 4, 1)).astype(np.float32), y=np.arange(n) % 2)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def upload(client: TestClient, data: bytes | str, **params: str):
    body = data.encode() if isinstance(data, str) else data
    return client.post(
        "/v1/datasets",
        params=params,
        content=body,
        headers={"content-type": "application/octet-stream"},
    )


def stored_files(settings: Settings) -> list[str]:
    root = Path(settings.artifacts_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def row_count(settings: Settings) -> int:
    with session_factory(settings.database_url)() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def test_a_csv_upload_is_stored_once_and_listed(client: TestClient, settings: Settings) -> None:
    r = upload(client, table_csv(), name="flowers", target="species")
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["id"].startswith("ds_") and ds["source"] == "upload" and ds["name"] == "flowers"
    assert (ds["task"], ds["feature_shape"], ds["samples"]) == ("classification", [4], 30)
    assert (ds["num_classes"], ds["classes"]) == (3, SPECIES)
    assert ds["features"] == ["length", "width", "soil=clay", "soil=sand"]
    assert ds["format"] == "csv" and len(ds["sha256"]) == 64
    assert stored_files(settings) == [f"datasets/{ds['id']}.npz"]

    again = upload(client, table_csv(), name="other name", target="species")
    assert again.status_code == 200 and again.json()["id"] == ds["id"]
    assert again.json()["name"] == "flowers"
    assert row_count(settings) == 1 and len(stored_files(settings)) == 1

    listed = client.get("/v1/datasets").json()
    assert [d["id"] for d in listed if d["source"] == "upload"] == [ds["id"]]
    assert "digits" in {d["id"] for d in listed}
    assert client.get(f"/v1/datasets/{ds['id']}").json() == ds
    assert client.get("/v1/datasets/ds_" + "0" * 20).status_code == 404


def test_npz_and_parquet_uploads(client: TestClient, tmp_path: Path) -> None:
    r = upload(client, images(), name="tiles")
    assert r.status_code == 201, r.text
    assert (r.json()["format"], r.json()["feature_shape"]) == ("npz", [4, 4, 1])
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(12)), "b": [i * 0.5 for i in range(12)]}), path)
    r = upload(client, path.read_bytes(), target="b")
    assert r.status_code == 201, r.text
    assert (r.json()["format"], r.json()["task"], r.json()["target_shape"]) == (
        "parquet",
        "regression",
        [1],
    )


def pickled() -> bytes:
    x = np.empty(12, dtype=object)
    x[:] = [{"i": i} for i in range(12)]
    return npz_bytes(x=x, y=np.arange(12) % 2)


BAD_UPLOADS = {
    # name: (body, query parameters, status, the location of the first error)
    "empty file": (b"", {"target": "y"}, 422, ["file"]),
    "not a CSV, NPZ or Parquet": (bytes(range(256)) * 4, {"target": "y"}, 415, ["file"]),
    "declared npz, sent csv": (table_csv(), {"format": "npz"}, 415, ["file"]),
    "csv without target": (table_csv(), {}, 422, ["target"]),
    "unknown target column": (table_csv(), {"target": "kind"}, 422, ["target"]),
    "NaN feature": (
        table_csv().replace("\n", "\nnan,1,clay,setosa\n", 1),
        {"target": "species"},
        422,
        ["file", "length", 1],
    ),
    "infinite regression target": (
        "a,b\n" + "".join(f"{i},{'inf' if i == 5 else i * 0.3}\n" for i in range(20)),
        {"target": "b"},
        422,
        ["target", 6],
    ),
    "too many categories": (
        "a,name,y\n" + "".join(f"{i},person{i},{i % 2}\n" for i in range(80)),
        {"target": "y"},
        422,
        ["file", "name"],
    ),
    "too few rows": (table_csv(rows=5), {"target": "species"}, 422, ["file"]),
    "a single class": (
        "a,y\n" + "".join(f"{i},same\n" for i in range(20)),
        {"target": "y"},
        422,
        ["target"],
    ),
    "duplicate column names": (
        "a,a,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)),
        {"target": "y"},
        422,
        ["file"],
    ),
    "ragged row": (
        table_csv().replace("clay", "clay,extra", 1),
        {"target": "species"},
        422,
        ["file", 1],
    ),
    "npz without y": (npz_bytes(x=np.zeros((20, 3))), {}, 422, ["file", "y"]),
    "npz lengths differ": (
        npz_bytes(x=np.zeros((20, 3)), y=np.arange(19) % 2),
        {},
        422,
        ["file", "y"],
    ),
    "npz pickled objects": (pickled(), {}, 422, ["file", "x"]),
    "npz text features": (
        npz_bytes(x=np.array([["a", "b"]] * 20), y=np.arange(20) % 2),
        {},
        422,
        ["file", "x"],
    ),
    "npz rank too high": (
        npz_bytes(x=np.zeros((20, 2, 2, 2, 2, 1)), y=np.arange(20) % 2),
        {},
        422,
        ["file", "x"],
    ),
    "fractional class labels": (
        npz_bytes(x=np.zeros((20, 3)), y=np.linspace(0, 1, 20)),
        {"task": "classification"},
        422,
        ["file", "y"],
    ),
    "npz with a target parameter": (images(), {"target": "y"}, 422, ["target"]),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_and_leaves_nothing(
    case: str, client: TestClient, settings: Settings
) -> None:
    body, params, status, loc = BAD_UPLOADS[case]
    r = upload(client, body, **params)
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["loc"] == loc, problem
    assert problem["errors"][0]["msg"] and problem["detail"]
    assert stored_files(settings) == [] and row_count(settings) == 0


def test_an_upload_past_the_size_limit_is_refused_while_streaming(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, redis_url, tmp_path, max_upload_bytes=1000)
    big = table_csv(rows=200)
    with TestClient(create_app(settings)) as client:
        declared = upload(client, big, target="species")
        assert declared.status_code == 413 and "1,000 bytes" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
            data = big.encode()
            for start in range(0, len(data), 256):
                yield data[start : start + 256]

        streamed = client.post(
            "/v1/datasets",
            params={"target": "species"},
            content=chunks(),
            headers={"content-type": "text/csv"},
        )
        assert streamed.status_code == 413
        assert upload(client, table_csv(rows=10), target="species").status_code == 201
    assert len(stored_files(settings)) == 1 and row_count(settings) == 1


def test_a_job_names_an_upload_and_holds_it_until_it_ends(
    client: TestClient, settings: Settings
) -> None:
    ds = upload(client, table_csv(), target="species").json()
    spec = {
        "dataset": {"name": ds["id"], "validation_split": 0.2},
        "model": {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
        "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1},
    }
    unknown = {**spec, "dataset": {"name": "ds_" + "0" * 20}}
    r = client.post("/v1/jobs", json=unknown)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["dataset", "name"]
    wrong = {**spec, "model": {"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]}}
    r = client.post("/v1/jobs", json=wrong)
    assert r.status_code == 422 and "expected (3,)" in r.text  # the upload's 3 classes

    job = client.post("/v1/jobs", json=spec)  # no worker here: it stays queued
    assert job.status_code == 201, job.text
    assert job.json()["summary"]["input_shape"] == [4]
    r = client.delete(f"/v1/datasets/{ds['id']}")
    assert r.status_code == 409 and job.json()["id"] in r.json()["detail"]
    assert row_count(settings) == 1

    # A clone of that job names the upload too, and holds it in turn.
    clone = client.post(f"/v1/jobs/{job.json()['id']}/clone", json={"overrides": {}})
    assert clone.status_code == 201, clone.text
    assert clone.json()["spec"]["dataset"]["name"] == ds["id"]
    assert (
        client.post(
            f"/v1/jobs/{job.json()['id']}/cancel", headers={"content-type": "application/json"}
        ).status_code
        == 202
    )
    r = client.delete(f"/v1/datasets/{ds['id']}")
    assert r.status_code == 409 and clone.json()["id"] in r.json()["detail"]

    assert (
        client.post(
            f"/v1/jobs/{clone.json()['id']}/cancel", headers={"content-type": "application/json"}
        ).status_code
        == 202
    )
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    r = client.post(
        f"/v1/jobs/{clone.json()['id']}/resume", headers={"content-type": "application/json"}
    )  # its data set is gone
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["dataset", "name"]
    assert row_count(settings) == 0 and stored_files(settings) == []
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 404
    assert client.delete("/v1/datasets/digits").status_code == 409


def test_a_sweep_runs_on_an_upload_and_holds_it_while_it_lives(
    client: TestClient, settings: Settings
) -> None:
    ds = upload(client, table_csv(), target="species").json()
    sweep = {
        "base": {
            "dataset": {"name": ds["id"], "validation_split": 0.2},
            "model": {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
            "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1},
        },
        "method": "grid",
        "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {"training.optimizer.learning_rate": {"values": [0.01, 0.1]}},
        "max_parallel": 1,
    }
    r = client.post("/v1/sweeps", json=sweep)
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    (trial,) = client.get("/v1/jobs", params={"sweep_id": sweep_id}).json()["items"]
    assert trial["spec"]["dataset"]["name"] == ds["id"] and trial["status"] == "queued"

    # Paused, with its one trial cancelled: no job uses the data set, but the sweep's next one will.
    assert (
        client.post(
            f"/v1/sweeps/{sweep_id}/pause", headers={"content-type": "application/json"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/v1/jobs/{trial['id']}/cancel", headers={"content-type": "application/json"}
        ).status_code
        == 202
    )
    r = client.post(
        f"/v1/jobs/{trial['id']}/resume", headers={"content-type": "application/json"}
    )  # its sweep decides what runs
    assert r.status_code == 409 and "resume the sweep" in r.json()["detail"]
    r = client.delete(f"/v1/datasets/{ds['id']}")
    assert r.status_code == 409 and sweep_id in r.json()["detail"]
    assert (
        client.post(
            f"/v1/sweeps/{sweep_id}/cancel", headers={"content-type": "application/json"}
        ).status_code
        == 200
    )
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 204
