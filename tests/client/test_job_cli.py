"""The job verbs of `epochal` (submit --set/--wait, metrics to CSV/JSON, follow, wait, resume,
clone, --json everywhere) and their exit codes, against a real API and worker."""

from __future__ import annotations

import csv
import io
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from epochal_client import Client, load_spec
from tests.client.conftest import EXAMPLES
from tests.client.test_cli import run
from tests.specs import DIVERGING, SLOW_DIGITS

pytestmark = pytest.mark.e2e


def write_spec(tmp_path: Path, spec: dict[str, Any], tag: str, **training: Any) -> Path:
    spec = {**spec, "tags": [tag], "training": {**spec["training"], **training}}
    path = tmp_path / f"spec-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def digits(tmp_path: Path, tag: str, **training: Any) -> Path:
    return write_spec(tmp_path, load_spec(EXAMPLES / "digits_mlp.yaml"), tag, **training)


def submitted(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, "submit", *argv, "--json", "--server", url)
    assert code == 0, err
    return json.loads(out)


def test_submit_set_overrides_the_spec(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"set-{uuid.uuid4().hex[:8]}"
    job = submitted(
        capsys, url, str(digits(tmp_path, tag, epochs=5)),
        "--epochs", "3",
        "--set", "training.epochs=1",  # after --epochs: it wins
        "--set", "model.layers.0.units=32",
        "--set", "model.layers[2].activation=softmax",
        "--set", "training.optimizer.learning_rate=0.01",
        "--set", f"tags=[a, {tag}]",
        "--set", "name=renamed",
        "--set", "training.shuffle=false",
        "--set", "training.diagnostics.every_n_steps=7",  # a new mapping key
    )  # fmt: skip
    spec = Client(url).get(job["id"]).spec
    assert job["status"] == "queued" and job["spec"] == spec
    assert spec["training"]["epochs"] == 1 and spec["model"]["layers"][0]["units"] == 32
    assert spec["training"]["optimizer"]["learning_rate"] == 0.01
    assert spec["tags"] == ["a", tag] and spec["name"] == "renamed"
    assert spec["training"]["shuffle"] is False
    assert spec["training"]["diagnostics"]["every_n_steps"] == 7


def test_a_set_that_does_not_fit_is_a_usage_error(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = digits(tmp_path, "usage")
    code, out, err = run(
        capsys, "submit", str(path), "--set", "model.layers.7.units=3", "--server", url
    )
    assert code == 2 and out == ""
    assert "model.layers.7.units" in err and "has 3 items" in err and "Traceback" not in err
    code, _, err = run(capsys, "submit", str(path), "--set", "training.epochs", "--server", url)
    assert code == 2 and "path=value" in err
    code, _, err = run(capsys, "submit", str(path), "--set", "model.layers.units.0=3")
    assert code == 2 and "model.layers" in err and "not an object" in err
    code, _, err = run(capsys, "metrics", "x", "-o", str(tmp_path / "m.txt"), "--server", url)
    assert code == 2 and "--format" in err


def test_submit_wait_shows_the_bar_and_exits_by_the_final_status(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"wait-{uuid.uuid4().hex[:8]}"
    code, out, err = run(
        capsys, "submit", str(digits(tmp_path, tag, epochs=2)), "--wait", "--poll", "0.2",
        "--server", url,
    )  # fmt: skip
    assert code == 0, err
    job = Client(url).get(out.splitlines()[0])
    assert job.status == "succeeded"
    # The bar's last state: the epochs, the loss and the validation metrics.
    assert "epoch 2/2" in out and "loss=" in out
    assert "val_loss=" in out and "val_accuracy=" in out
    assert f"{job.final['val_accuracy']:.4g}" in out  # the final table

    code, out, err = run(
        capsys, "submit", str(write_spec(tmp_path, DIVERGING, tag)), "--wait", "--json",
        "--poll", "0.2", "--server", url,
    )  # fmt: skip
    failed = json.loads(out)  # only the final job on stdout
    assert code == 1 and failed["status"] == "failed", err

    code, out, _ = run(capsys, "wait", failed["id"], "--json", "--server", url)
    assert code == 1 and json.loads(out)["id"] == failed["id"]
    code, out, _ = run(capsys, "wait", job.id, "--server", url)
    assert code == 0 and "succeeded" in out and "val_accuracy" in out


def test_metrics_to_csv_and_json_equal_the_api_series(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(url)
    job = client.wait(submitted(capsys, url, str(digits(tmp_path, "m", epochs=2)))["id"], 30, 0.2)
    assert job.status == "succeeded"
    series = client.metrics(job.id)

    code, out, err = run(capsys, "metrics", job.id, "--format", "csv", "--server", url)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["series", "step", "epoch", "value"]
    expected = [
        (s.name, step, epoch, value)
        for s in series
        for step, epoch, value in zip(s.steps, s.epochs, s.values, strict=True)
    ]
    got = [(r["series"], int(r["step"]), int(r["epoch"]), float(r["value"])) for r in rows]
    assert got == expected and len(got) > 20

    target = tmp_path / "m.json"  # the format from the file's name
    code, out, _ = run(
        capsys, "metrics", job.id, "--names", "val_loss,loss", "--since-step", "1",
        "-o", str(target), "--server", url,
    )  # fmt: skip
    assert code == 0 and out == ""
    body = json.loads(target.read_text())
    wanted = client.metrics(job.id, names=["val_loss", "loss"], since_step=1)
    assert body["job_id"] == job.id
    assert body["series"] == [s.model_dump(exclude_none=True) for s in wanted]
    assert {s["name"] for s in body["series"]} == {"val_loss", "loss"}

    code, out, _ = run(capsys, "metrics", job.id, "--json", "--max-points", "3", "--server", url)
    downsampled = json.loads(out)["series"]
    assert code == 0 and all(len(s["values"]) <= 3 for s in downsampled)
    assert [s["name"] for s in downsampled if "min" in s] == ["batch_loss"]  # the long one
    code, out, _ = run(capsys, "metrics", job.id, "--server", url)
    assert code == 0 and "batch_loss" in out and "points" in out


def test_follow_prints_events_until_the_job_ends(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = submitted(capsys, url, str(digits(tmp_path, "follow", epochs=3)))
    code, out, err = run(capsys, "follow", job["id"], "--interval", "0.2", "--server", url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1].startswith("end  succeeded") and "val_accuracy=" in lines[-1]
    assert any(line.startswith("metrics  step") and "batch_loss=" in line for line in lines)

    code, out, _ = run(capsys, "follow", job["id"], "--json", "--server", url)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and events[0]["event"] == "progress" and events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "succeeded"
    points = {
        s["name"]: len(s["steps"])
        for e in events
        if e["event"] == "metrics"
        for s in e["data"]["series"]
    }
    api = {s.name: len(s.steps) for s in Client(url).metrics(job["id"])}
    assert points == api  # every point, once

    failed = submitted(capsys, url, str(write_spec(tmp_path, DIVERGING, "follow")))
    code, out, _ = run(capsys, "follow", failed["id"], "--server", url)
    assert code == 1 and "end  failed" in out and "error:" in out


def test_resume_a_cancelled_job(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(url)
    job = submitted(capsys, url, str(write_spec(tmp_path, SLOW_DIGITS, "resume", epochs=40)))
    deadline = time.monotonic() + 60
    while client.get(job["id"]).progress.get("epoch", 0) < 2:
        assert time.monotonic() < deadline, "the job never reached its second epoch"
        time.sleep(0.05)
    code, out, _ = run(capsys, "cancel", job["id"], "--json", "--server", url)
    assert code == 0 and json.loads(out)["id"] == job["id"]
    cancelled = client.wait(job["id"], timeout=30, poll=0.1)
    assert cancelled.status == "cancelled"
    code, out, _ = run(capsys, "wait", job["id"], "--server", url)
    assert code == 1 and "cancelled" in out

    code, out, err = run(capsys, "resume", job["id"], "--wait", "--poll", "0.2", "--server", url)
    assert code == 0, err
    assert out.splitlines()[0] == job["id"] and "succeeded" in out and "epoch 40/40" in out
    resumed = client.get(job["id"])
    assert resumed.status == "succeeded" and resumed.attempts >= 2

    code, _, err = run(capsys, "resume", job["id"], "--server", url)  # succeeded: refused
    assert code == 3 and "409" in err and "Traceback" not in err


def test_clone_with_set_and_init_from(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(url)
    source = client.wait(
        submitted(capsys, url, str(digits(tmp_path, "clone", epochs=2)))["id"], 30, 0.2
    )
    code, out, err = run(
        capsys, "clone", source.id, "--set", "training.epochs=1", "--set",
        "model.layers.0.units=16", "--name", "cloned", "--init-from", "none", "--wait",
        "--poll", "0.2", "--server", url,
    )  # fmt: skip
    assert code == 0, err
    clone = client.get(out.splitlines()[0])
    assert clone.source_job_id == source.id and clone.name == "cloned"
    assert clone.spec["training"]["epochs"] == 1 and clone.spec["model"]["layers"][0]["units"] == 16
    assert clone.status == "succeeded" and clone.init_from is None

    code, out, err = run(
        capsys, "clone", source.id, "--init-from", "last", "--epochs", "1", "--json",
        "--server", url,
    )  # fmt: skip
    tuned = json.loads(out)
    assert code == 0, err
    assert tuned["init_from"]["checkpoint"] == "last" and tuned["init_from"]["job_id"] == source.id

    # The digits job keeps no best checkpoint: the API's 409, its detail, exit 3.
    code, out, err = run(capsys, "clone", source.id, "--init-from", "best", "--server", url)
    assert code == 3 and out == "" and "409" in err and "no best checkpoint" in err
    # A --set that does not fit the source's spec: a usage error before the clone.
    code, _, err = run(
        capsys, "clone", source.id, "--set", "model.layers.5.units=1", "--server", url
    )
    assert code == 2 and "model.layers.5.units" in err


def test_json_on_every_job_verb(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"json-{uuid.uuid4().hex[:8]}"
    client = Client(url)
    a = client.wait(submitted(capsys, url, str(digits(tmp_path, tag, epochs=1)))["id"], 30, 0.2)
    b = client.wait(submitted(capsys, url, str(digits(tmp_path, tag, epochs=2)))["id"], 30, 0.2)

    code, out, _ = run(capsys, "status", a.id, "--json", "--server", url)
    assert code == 0 and json.loads(out)["summary"] == a.summary
    code, out, _ = run(capsys, "list", "--tag", tag, "--limit", "1", "--json", "--server", url)
    page = json.loads(out)
    assert code == 0 and [j["id"] for j in page["items"]] == [b.id] and page["next_cursor"]
    code, out, _ = run(
        capsys, "list", "--tag", tag, "--limit", "1", "--all", "--json", "--server", url
    )
    page = json.loads(out)
    assert code == 0 and [j["id"] for j in page["items"]] == [b.id, a.id]
    assert page["next_cursor"] is None
    code, out, _ = run(capsys, "compare", a.id, b.id, "--json", "--server", url)
    compared = json.loads(out)
    assert code == 0 and compared["params"]["training.epochs"] == [1, 2]
    code, out, err = run(capsys, "cancel", a.id, "--json", "--server", url)  # it has ended
    assert code == 3 and out == "" and "409" in err
    code, out, _ = run(capsys, "delete", a.id, "--json", "--server", url)
    assert code == 0 and json.loads(out) == {"id": a.id, "deleted": True}

    # The sweep and fleet verbs too.
    code, out, _ = run(capsys, "sweep-list", "--json", "--limit", "2", "--server", url)
    assert code == 0 and set(json.loads(out)) == {"items", "next_cursor"}
    code, out, _ = run(capsys, "workers", "--json", "--server", url)
    assert code == 0 and len(json.loads(out)) >= 1
    code, out, _ = run(capsys, "queues", "--json", "--server", url)
    assert code == 0 and all("queued" in q for q in json.loads(out))
    code, out, err = run(capsys, "sweep-status", "no-such-sweep", "--json", "--server", url)
    assert code == 3 and out == "" and "404" in err


def test_a_missing_job_exits_3_and_a_closed_port_exits_4_quickly(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for verb in ("status", "follow", "wait", "metrics", "resume", "clone", "cancel", "delete"):
        code, out, err = run(capsys, verb, "no-such-job", "--server", url)
        assert (code, out) == (3, ""), (verb, err)
        assert "404" in err and "no-such-job" in err and "Traceback" not in err, verb

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for argv in (("status", "x"), ("follow", "x"), ("list",)):
        started = time.monotonic()
        code, out, err = run(capsys, *argv, "--json", "--server", closed)
        assert code == 4 and out == "" and "cannot reach" in err, argv
        assert time.monotonic() - started < 5, argv
