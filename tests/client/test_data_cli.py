"""`epochal datasets | download | predict | evaluate` against a real API and worker: a CSV with
a text column uploaded, trained on once (one job shared by the module), its model downloaded
and its predictions written as CSV from CSV, JSON and NPZ rows."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

import epochal_client
from epochal_client import Client, Dataset
from epochal_client.cli import main
from tests.api.test_dataset_uploads import SPECIES, table_csv
from tests.api.test_evaluate import flowers_spec

pytestmark = pytest.mark.e2e

ROWS_CSV = table_csv(rows=9, seed=1)  # the training header, target included (ignored)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, str]:
    """An upload of the flower table (through Client.upload_dataset) and a job trained on it."""
    path = tmp_path_factory.mktemp("flowers") / "flowers.csv"
    path.write_text(table_csv(rows=90))
    seen: list[tuple[int, int]] = []
    with Client(url) as c:
        ds = c.upload_dataset(
            path, target="species", on_progress=lambda sent, total: seen.append((sent, total))
        )
        assert seen[-1] == (path.stat().st_size, path.stat().st_size)
        spec = flowers_spec(ds.id)
        spec["training"]["epochs"] = 15
        job = c.wait(c.submit(spec).id, timeout=120, poll=0.2)
    assert job.status == "succeeded", job.error
    assert (ds.name, ds.samples, ds.classes) == ("flowers", 90, SPECIES)
    return ds, job.id


def _records() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ROWS_CSV)))


def _vectors() -> list[list[float]]:
    """By hand, as at upload: length, width, soil=clay, soil=sand."""
    return [
        [
            float(r["length"]),
            float(r["width"]),
            float(r["soil"] == "clay"),
            float(r["soil"] == "sand"),
        ]
        for r in _records()
    ]


def _safetensors(data: bytes) -> tuple[dict, bytes]:
    """A safetensors file's header, parsed, and its tensors' bytes."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def test_datasets_upload_list_show_delete(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.csv"
    path.write_text(table_csv(rows=30, seed=7))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FORCE_COLOR", "1")  # stderr taken for a terminal: the byte bar is drawn
        code, out, err = run(
            capsys, "datasets", "upload", str(path), "--name", "small-flowers",
            "--target", "species", "--server", url,
        )  # fmt: skip
    assert code == 0, err
    assert "uploading small.csv" in err
    [ds_id] = re.findall(r"^(\S+)  small-flowers  \(upload, classification\)", out, re.M)
    assert "  rows: 30\n" in out and "  columns: length, width, soil\n" in out
    assert "soil=clay, soil=sand" in out and "setosa, versicolor, virginica" in out

    # The same file again: the same data set, as JSON.
    code, out, _ = run(capsys, "datasets", "upload", str(path), "--target", "species",
                       "--json", "--server", url)  # fmt: skip
    assert code == 0 and json.loads(out)["id"] == ds_id

    code, out, _ = run(capsys, "datasets", "list", "--server", url)
    assert code == 0 and ds_id in out and "small-flowers" in out and "digits" in out
    code, out, _ = run(capsys, "datasets", "list", "--json", "--server", url)
    assert code == 0 and ds_id in {d["id"] for d in json.loads(out)}
    code, out, _ = run(capsys, "datasets", "show", "small-flowers", "--json", "--server", url)
    assert code == 0 and json.loads(out)["columns"] == ["length", "width", "soil"]

    code, out, _ = run(capsys, "datasets", "delete", ds_id, "--server", url)
    assert code == 0 and f"{ds_id}  small-flowers  deleted" in out
    code, _, err = run(capsys, "datasets", "show", ds_id, "--server", url)
    assert code == 3 and ds_id in err
    code, _, err = run(capsys, "datasets", "upload", str(tmp_path / "none.csv"), "--server", url)
    assert code == 2 and "none.csv: no such file" in err and "Traceback" not in err


def test_download_two_formats_and_a_missing_checkpoint(
    url: str,
    trained: tuple[Dataset, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, job = trained
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "download", job, "--server", url)
    assert code == 0, err
    weights = tmp_path / f"{job}.safetensors"
    assert str(weights.name) in out
    # The API's safetensors header lists its metadata in no fixed order (safetensors keeps it
    # in a hash map): the same header and the same tensor bytes.
    api = httpx.get(f"{url}/v1/jobs/{job}/model").content
    assert _safetensors(weights.read_bytes()) == _safetensors(api)
    code, _, err = run(capsys, "download", job, "--server", url)  # it exists now
    assert code == 2 and "--force" in err
    code, _, _ = run(capsys, "download", job, "--force", "--server", url)
    assert code == 0

    onnx = tmp_path / "m.onnx"
    code, out, _ = run(capsys, "download", job, "--format", "onnx", "-o", str(onnx),
                       "--json", "--server", url)  # fmt: skip
    assert code == 0 and json.loads(out)["bytes"] == onnx.stat().st_size
    api = httpx.get(f"{url}/v1/jobs/{job}/model", params={"format": "onnx"}, timeout=60)
    assert onnx.read_bytes() == api.content

    # No model_checkpoint callback: no best checkpoint, and no file is left behind.
    code, _, err = run(capsys, "download", job, "--checkpoint", "best", "-o", "best.st",
                       "--server", url)  # fmt: skip
    assert code == 3 and "best" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{job}.safetensors", "m.onnx"]

    code, _, err = run(capsys, "download", "no-such-job", "--server", url)
    assert code == 3 and "no-such-job" in err


def test_predict_from_csv_json_and_npz_and_evaluate(
    url: str, trained: tuple[Dataset, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds, job = trained
    expected = [o["label"] for o in Client(url).predict(job, inputs=_vectors())]
    assert len(set(expected)) > 1  # the rows are told apart: the comparison means something

    def labels(text: str) -> list[int]:
        rows = list(csv.DictReader(io.StringIO(text)))
        assert list(rows[0]) == ["label", "class", "p_setosa", "p_versicolor", "p_virginica"]
        assert [r["class"] for r in rows] == [SPECIES[i] for i in expected]
        return [int(r["label"]) for r in rows]

    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text(ROWS_CSV)
    out_csv = tmp_path / "out.csv"
    code, out, err = run(capsys, "predict", job, str(rows_csv), "-o", str(out_csv), "--server", url)
    assert code == 0, err
    assert "9 predictions written" in out and labels(out_csv.read_text()) == expected

    records = tmp_path / "records.json"
    for body in (_records(), {"records": _records()}):
        records.write_text(json.dumps(body))
        code, out, err = run(capsys, "predict", job, str(records), "--server", url)
        assert code == 0 and labels(out) == expected, err

    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.array(_vectors(), dtype=np.float32))
    code, out, err = run(capsys, "predict", job, str(inputs), "--server", url)
    assert code == 0 and labels(out) == expected, err
    np.savez(inputs, x=np.zeros((1, 4)), y=np.zeros(1))
    code, _, err = run(capsys, "predict", job, str(inputs), "--server", url)
    assert code == 2 and "--array" in err and "x, y" in err
    code, out, _ = run(capsys, "predict", job, str(inputs), "--array", "x", "--json",
                       "--server", url)  # fmt: skip
    assert code == 0 and len(json.loads(out)["outputs"]) == 1

    code, _, err = run(capsys, "predict", job, str(tmp_path / "none.csv"), "--server", url)
    assert code == 2 and "none.csv: no such file" in err
    code, _, err = run(capsys, "predict", "no-such-job", str(rows_csv), "--server", url)
    assert code == 3 and "no-such-job" in err

    code, out, err = run(capsys, "evaluate", job, ds.id, "--server", url)
    assert code == 0, err
    assert f"on {ds.id} (90 samples)" in out and "accuracy" in out and "loss" in out
    code, out, _ = run(capsys, "evaluate", job, ds.id, "--json", "--server", url)
    assert code == 0 and json.loads(out)["metrics"]["accuracy"] >= 0.8
    code, _, err = run(capsys, "evaluate", job, "no-such-data", "--server", url)
    assert code == 3 and "no-such-data" in err


def test_offline_prediction_without_the_extra_says_what_to_install(
    trained: tuple[Dataset, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read")
    (tmp_path / "rows.csv").write_text(ROWS_CSV)
    monkeypatch.setitem(sys.modules, "epochal_client.offline", None)  # import fails
    monkeypatch.delattr(epochal_client, "offline", raising=False)  # imported by another test
    code, _, err = run(capsys, "predict", str(model), str(tmp_path / "rows.csv"))
    assert code == 2 and "pip install 'epochal-client[predict]'" in err


def test_offline_prediction_writes_the_api_csv(
    url: str, trained: tuple[Dataset, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`epochal predict model.onnx rows.csv`: the CSV the API's answer gives, without a server
    (runs where epochal_client.offline is installed)."""
    pytest.importorskip("epochal_client.offline")
    _, job = trained
    model = Client(url).download_model(job, tmp_path / "model.onnx", format="onnx")
    rows = tmp_path / "rows.csv"
    rows.write_text(ROWS_CSV)
    code, api, err = run(capsys, "predict", job, str(rows), "--server", url)
    assert code == 0, err
    code, offline, err = run(capsys, "predict", str(model), str(rows), "--server", "http://0:1")
    assert code == 0, err
    api_rows, offline_rows = (list(csv.reader(io.StringIO(t))) for t in (api, offline))
    assert offline_rows[0] == api_rows[0] == ["label", "class", *(f"p_{s}" for s in SPECIES)]
    assert [r[:2] for r in offline_rows] == [r[:2] for r in api_rows]
    for a, b in zip(api_rows[1:], offline_rows[1:], strict=True):
        assert [float(x) for x in a[2:]] == pytest.approx([float(x) for x in b[2:]], abs=1e-5)


def test_an_upload_cut_off_is_sent_again_whole_with_the_same_key(tmp_path: Path) -> None:
    """A real HTTP server that reads the first upload's body and hangs up without answering,
    then answers the second: the file is streamed again from its start, with a
    Content-Length (not chunked) and the same Idempotency-Key, so the API keeps one."""
    seen: list[tuple[str | None, str | None, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append((self.headers["idempotency-key"], self.headers["transfer-encoding"], body))
            if len(seen) == 1:
                self.close_connection = True  # no answer: the client sees the connection drop
                return
            data = json.dumps({**DATASET, "size_bytes": len(body)}).encode()
            self.send_response(201)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    path = tmp_path / "big.csv"
    path.write_bytes(table_csv(rows=120_000).encode())  # 3 MB: 3 chunks of transfer.CHUNK_BYTES
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        progress: list[int] = []
        with Client(f"http://127.0.0.1:{server.server_port}", backoff=0.01) as c:
            ds = c.upload_dataset(path, on_progress=lambda sent, _: progress.append(sent))
    finally:
        server.shutdown()
        server.server_close()
    (key1, chunked1, body1), (key2, chunked2, body2) = seen
    assert key1 and key1 == key2 and chunked1 is None and chunked2 is None
    assert body1 == body2 == path.read_bytes() and ds.size_bytes == len(body1)
    assert progress.count(len(body1)) == 2 and progress[0] < len(body1)  # from 0 each time


DATASET = {
    "id": "ds_1",
    "name": "big",
    "source": "upload",
    "description": "uploaded CSV",
    "task": "classification",
    "feature_shape": [4],
    "samples": 40_000,
    "num_classes": 3,
    "target_shape": [],
    "options": [],
}
