"""epochal_client.offline against a real API and worker: a CSV with a text column is trained, the
API predicts its original rows (records and a CSV body), and the downloaded ONNX file predicts
the same rows offline (CSV, JSON records, NPZ vectors) with the same answer, probabilities
included. A model ending in logits (from_logits: true) too: its softmax is applied offline."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest

from epochal_client import Client
from epochal_client.cli import main
from epochal_client.offline import ModelFileError, predict_file
from epochal_client.row_files import RowFileError
from epochal_client.rows import RowError
from tests.api.test_dataset_uploads import SPECIES, table_csv
from tests.api.test_evaluate import flowers_spec
from tests.api.test_raw_rows import _vectors

pytestmark = pytest.mark.e2e

ROWS_CSV = table_csv(rows=9, seed=1)  # the training header, the target included (ignored)
CSV_TYPE = {"content-type": "text/csv"}


def _same(offline: dict[str, Any], api: dict[str, Any]) -> None:
    assert offline["job_id"] == api["job_id"]
    assert len(offline["outputs"]) == len(api["outputs"])
    for mine, theirs in zip(offline["outputs"], api["outputs"], strict=True):
        assert mine.keys() == theirs.keys() == {"label", "probabilities", "class"}
        assert (mine["label"], mine["class"]) == (theirs["label"], theirs["class"])
        np.testing.assert_allclose(mine["probabilities"], theirs["probabilities"], atol=1e-5)


def _train(http: httpx.Client, client: Client, logits: bool, table: str | None = None) -> str:
    ds = http.post(
        "/v1/datasets",
        params={"target": "species"},
        content=(table or table_csv(rows=60)).encode(),
        headers=CSV_TYPE,
    )
    assert ds.status_code in (200, 201), ds.text  # 200: the same file, already uploaded
    spec = flowers_spec(ds.json()["id"])
    spec["training"]["epochs"] = 5
    if logits:
        spec["model"]["layers"][-1]["activation"] = "linear"
        spec["training"]["loss"] = {"type": "sparse_categorical_crossentropy", "from_logits": True}
    job = client.wait(client.submit(spec).id, timeout=120, poll=0.2)
    assert job.status == "succeeded", job.error
    return job.id


@pytest.mark.parametrize("logits", [False, True], ids=["softmax", "from_logits"])
def test_the_downloaded_onnx_model_answers_as_the_api(
    url: str, tmp_path: Path, logits: bool
) -> None:
    with httpx.Client(base_url=url, timeout=60) as http, Client(url, retries=1) as client:
        job = _train(http, client, logits)
        predict = f"/v1/jobs/{job}/predict"
        records = list(csv.DictReader(io.StringIO(ROWS_CSV)))
        by_records = http.post(predict, json={"records": records})
        by_csv = http.post(predict, content=ROWS_CSV.encode(), headers=CSV_TYPE)
        assert by_records.status_code == by_csv.status_code == 200, by_csv.text
        api = by_csv.json()
        assert by_records.json() == api
        assert len({o["label"] for o in api["outputs"]}) > 1  # the rows are told apart
        model = tmp_path / "model.onnx"
        onnx_file = http.get(f"/v1/jobs/{job}/model", params={"format": "onnx"})
        assert onnx_file.status_code == 200, onnx_file.text
        model.write_bytes(onnx_file.content)

    # As a spreadsheet saves it: a byte-order mark and CRLF line ends.
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"\xef\xbb\xbf" + ROWS_CSV.replace("\n", "\r\n").encode())
    _same(predict_file(model, rows), api)
    (tmp_path / "rows.json").write_text(json.dumps(records))
    _same(predict_file(str(model), str(tmp_path / "rows.json")), api)
    (tmp_path / "body.json").write_text(json.dumps({"records": records}))
    _same(predict_file(model, tmp_path / "body.json"), api)
    vectors = _vectors(records)
    np.savez(tmp_path / "x.npz", x=np.array(vectors, dtype=np.float32))
    _same(predict_file(model, tmp_path / "x.npz"), api)

    # What does not fit is named, as the API names it.
    (tmp_path / "bad.csv").write_text("length,width,soil\n4.0,2.0,clay\n4.1,2.0,loam\n")
    with pytest.raises(RowError) as e:
        predict_file(model, tmp_path / "bad.csv")
    [(loc, message, kind)] = e.value.issues
    assert (loc, kind) == ((1, "soil"), "unknown_category") and "'clay', 'sand'" in message
    np.savez(tmp_path / "short.npz", x=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(RowError, match="the features, in order: length, width, soil=clay"):
        predict_file(model, tmp_path / "short.npz")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        predict_file(rows, rows)
    with pytest.raises(RowFileError, match=r"ending in \.csv, \.json, \.npz"):
        predict_file(model, model)


def test_offline_and_the_api_read_a_file_alike_and_keep_the_classes(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file through the CLI's API path and offline: a JSON list of vectors is accepted
    by both with the same outputs, NaN refused by both at the same input, an .npz array picked
    by --array on both paths. Once the data set is deleted, the CSV still names the classes
    (the API's answer carries them, as the model file does)."""

    def cli(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    table = table_csv(rows=45, seed=11)  # an upload of its own: it is deleted below
    with httpx.Client(base_url=url, timeout=60) as http, Client(url, retries=1) as client:
        job = _train(http, client, False, table)
        model = client.download_model(job, tmp_path / "model.onnx", format="onnx")
        dataset = client.get(job).spec["dataset"]["name"]
    records = list(csv.DictReader(io.StringIO(ROWS_CSV)))
    vectors = tmp_path / "vectors.json"
    vectors.write_text(json.dumps(_vectors(records)))
    both = {}
    for where in (job, str(model)):
        code, out, err = cli("predict", where, str(vectors), "--json", "--server", url)
        assert code == 0, err
        both[where] = json.loads(out)
    api, offline = both[job], both[str(model)]
    assert api["classes"] == offline["classes"] == SPECIES
    _same(offline, api)
    assert len({o["label"] for o in api["outputs"]}) > 1

    nan = _vectors(records[:2])
    nan[1][1] = float("nan")
    vectors.write_text(json.dumps(nan))  # Python writes NaN, as a numpy user's file may hold
    for where in (job, str(model)):
        code, out, err = cli("predict", where, str(vectors), "--server", url)
        assert (code, out) == (2 if where == str(model) else 3, ""), err
        assert "inputs[1][1] is NaN; expected a finite number" in err and "Traceback" not in err
    with pytest.raises(RowError) as e:
        predict_file(model, vectors)
    assert e.value.issues == [(("inputs", 1), "inputs[1][1] is NaN; expected a finite number",
                               "not_finite")]  # fmt: skip

    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, x=np.array(_vectors(records), np.float32), y=np.zeros((2, 3), np.float32))
    for where in (job, str(model)):
        code, _, err = cli("predict", where, str(arrays), "--server", url)
        assert code == 2 and "--array" in err and "x, y" in err
        code, out, err = cli("predict", where, str(arrays), "--array", "x", "--json",
                             "--server", url)  # fmt: skip
        assert code == 0, err
        _same(json.loads(out), api)
        code, _, err = cli("predict", where, str(arrays), "--array", "y", "--server", url)
        assert code in (2, 3) and "inputs[0] has shape (3,); expected (4,)" in err
    # A model whose metadata lies about its inputs: onnxruntime's refusal, without a traceback.
    lying = onnx.load(str(model))
    for prop in lying.metadata_props:
        if prop.key == "epochal.inputs":
            prop.value = json.dumps({"shape": [3], "ids": None})
        if prop.key == "epochal.preprocessing":
            prop.value = json.dumps({**json.loads(prop.value), "scaler": None})
    onnx.save(lying, str(tmp_path / "lying.onnx"))
    code, _, err = cli("predict", str(tmp_path / "lying.onnx"), str(arrays), "--array", "y")
    assert code == 2 and "onnxruntime could not run it" in err and "Traceback" not in err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip file")
    code, _, err = cli("predict", str(model), str(tmp_path / "broken.npz"))
    assert code == 2 and "not a readable .npz file" in err and "Traceback" not in err

    assert httpx.delete(f"{url}/v1/datasets/{dataset}", timeout=60).status_code == 204
    rows = tmp_path / "rows.csv"
    rows.write_text(ROWS_CSV)
    header = ["label", "class", *(f"p_{s}" for s in SPECIES)]
    for where in (job, str(model)):
        code, out, err = cli("predict", where, str(rows), "--server", url)
        assert code == 0, err
        assert next(csv.reader(io.StringIO(out))) == header


def test_without_the_predict_extra_the_error_names_the_install() -> None:
    """No onnxruntime (nor numpy): importing the offline module says what to install, and the
    client itself still imports."""
    for blocked in ("onnxruntime", "numpy"):
        code = (
            f"import sys; sys.modules[{blocked!r}] = None; import epochal_client\n"
            "try:\n    import epochal_client.offline\nexcept ImportError as e:\n    print(e)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert "pip install 'epochal-client[predict]'" in out, out
