"""`epochal submit | status | metrics | cancel | list | compare` against a real API and worker."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from epochal_client import Client, load_spec
from epochal_client.cli import main
from tests.client.conftest import EXAMPLES
from tests.e2e.stack import epochal_command, service_env

pytestmark = pytest.mark.e2e


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spec_file(tmp_path: Path, tag: str, **training: object) -> Path:
    spec = load_spec(EXAMPLES / "digits_mlp.yaml")
    spec["tags"] = [tag]
    spec["training"].update(training)
    path = tmp_path / f"spec-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_submit_wait_status_metrics_list_compare(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = run(
        capsys, "submit", str(spec_file(tmp_path, tag, epochs=2)), "--wait", "--poll", "0.2",
        "--server", url,
    )  # fmt: skip
    assert code == 0, err
    job_id = out.splitlines()[0]
    assert "9,610 parameters" in out and "dense" in out
    job = Client(url).get(job_id)
    assert job.status == "succeeded"
    assert "succeeded" in out and "val_accuracy" in out
    assert f"{job.final['val_accuracy']:.4g}" in out  # the final metrics table

    code, out, _ = run(capsys, "status", job_id, "--server", url)
    assert code == 0 and job_id in out and "succeeded" in out and "epoch 2/2" in out

    code, out, _ = run(capsys, "metrics", job_id, "--names", "val_accuracy,loss", "--server", url)
    assert code == 0 and "val_accuracy" in out and "loss" in out and "batch_loss" not in out
    code, out, _ = run(capsys, "metrics", job_id, "--max-points", "2", "--server", url)
    assert code == 0 and "batch_loss" in out

    # A second job, cancelled before it can finish: list, cancel and compare see both.
    code, out, _ = run(
        capsys, "submit", str(spec_file(tmp_path, tag, epochs=5000, batch_size=32)),
        "--server", url,
    )  # fmt: skip
    other = out.splitlines()[0]
    assert code == 0 and "queued" in out
    code, out, _ = run(capsys, "cancel", other, "--server", url)
    assert code == 0 and other in out
    Client(url).wait(other, timeout=30, poll=0.2)

    code, out, _ = run(capsys, "list", "--tag", tag, "--server", url)
    assert code == 0 and "2 jobs" in out and job_id in out and other in out
    code, out, _ = run(capsys, "list", "--tag", tag, "--status", "cancelled", "--server", url)
    assert code == 0 and "1 jobs" in out and other in out and job_id not in out
    # Page by page with the cursor it prints, or every page at once.
    code, out, _ = run(capsys, "list", "--tag", tag, "--limit", "1", "--server", url)
    assert code == 0 and "1 jobs" in out and other in out  # newest first
    [cursor] = re.findall(r"--cursor (\S+)", out)
    code, out, _ = run(
        capsys, "list", "--tag", tag, "--limit", "1", "--cursor", cursor, "--server", url
    )
    assert code == 0 and "1 jobs" in out and job_id in out and "--cursor" not in out
    code, out, _ = run(capsys, "list", "--tag", tag, "--limit", "1", "--all", "--server", url)
    assert code == 0 and "2 jobs" in out and job_id in out and other in out

    code, out, _ = run(capsys, "compare", job_id, other, "--server", url)
    assert code == 0
    assert "differing params" in out and "training.epochs" in out and "5000" in out
    assert "training.batch_size" in out and "final metrics" in out and "best metrics" in out
    assert "val_accuracy" in out and job_id[:8] in out and other[:8] in out


def test_a_bad_spec_prints_the_problem_location_and_exits_3(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_spec(EXAMPLES / "digits_mlp.yaml")
    spec["model"]["layers"][0]["units"] = -3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, err = run(capsys, "submit", str(path), "--wait", "--server", url)
    assert code == 3 and out == ""
    assert "422" in err and "model.layers.0.units" in err and "Traceback" not in err

    code, _, err = run(capsys, "submit", str(tmp_path / "missing.yaml"), "--server", url)
    assert code == 2 and "missing.yaml" in err
    code, _, err = run(capsys, "compare", "only-one", "--server", url)
    assert code == 3 and err.startswith("error:")


def test_the_console_script_reads_epochal_url_and_reports_errors(url: str) -> None:
    env = service_env(url=url)  # EPOCHAL_URL
    ok = subprocess.run(
        [epochal_command(), "list", "--limit", "1"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0 and " jobs" in ok.stdout and "created" in ok.stdout, ok.stderr
    assert "HTTP Request" not in ok.stderr  # httpx's lines only with --verbose
    # The environment that started the server reaches it: its host and port, no EPOCHAL_URL.
    port = url.rsplit(":", 1)[1].strip("/")
    served = {k: v for k, v in env.items() if k != "EPOCHAL_URL"}
    served |= {"EPOCHAL_API_HOST": "0.0.0.0", "EPOCHAL_API_PORT": port}
    verbose = subprocess.run(
        [epochal_command(), "--verbose", "list", "--limit", "1"],
        env=served,
        capture_output=True,
        text=True,
    )
    assert verbose.returncode == 0 and " jobs" in verbose.stdout, verbose.stderr
    assert f":{port}" in verbose.stderr and "HTTP Request" in verbose.stderr
    missing = subprocess.run(
        [epochal_command(), "status", "no-such-job"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 3
    assert "404 Not found" in missing.stderr and "no-such-job" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_list_filters_on_spec_values_and_orders_by_a_metric(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"cli-param-{uuid.uuid4().hex[:8]}"
    ids = {}
    for optimizer in (
        {"type": "adam", "learning_rate": 0.001},
        {"type": "sgd", "learning_rate": 0.5},
    ):
        path = spec_file(tmp_path, tag, epochs=2, optimizer=optimizer)
        code, out, err = run(capsys, "submit", str(path), "--wait", "--json", "--server", url)
        assert code == 0, err
        ids[optimizer["type"]] = json.loads(out)["id"]

    def listed(*argv: str) -> list[dict]:
        code, out, err = run(capsys, "list", "--tag", tag, "--json", "--server", url, *argv)
        assert code == 0, err
        return json.loads(out)["items"]

    # --param: the value read as YAML, so 0.5 is a number and matches the stored float.
    [job] = listed("--param", "training.optimizer.type=sgd")
    assert job["id"] == ids["sgd"]
    [job] = listed("--param", "training.optimizer.learning_rate=0.001")
    assert job["id"] == ids["adam"]
    assert listed("--param", "training.optimizer.type=sgd", "--param", "training.epochs=3") == []
    # --order-by a metric: the job with the higher final val_accuracy first, then last.
    jobs = {j["id"]: j["summary"]["final"]["val_accuracy"] for j in listed()}
    best_first = sorted(jobs, key=jobs.__getitem__, reverse=True)
    assert jobs[best_first[0]] != jobs[best_first[1]]
    by_metric = listed("--order-by", "metric.val_accuracy")
    assert [j["id"] for j in by_metric] == best_first
    by_metric = listed("--order-by", "metric.val_accuracy", "--order", "asc")
    assert [j["id"] for j in by_metric] == best_first[::-1]
    # Oldest first by creation: adam was submitted first.
    assert [j["id"] for j in listed("--order", "asc")] == [ids["adam"], ids["sgd"]]


def test_list_refuses_bad_filters_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    server = "http://127.0.0.1:9"  # nothing listens: a request would exit 4
    code, _, err = run(capsys, "list", "--cursor", "c", "--all", "--server", server)
    assert code == 2 and "not allowed with argument" in err
    code, _, err = run(capsys, "list", "--param", "training.optimizer.type", "--server", server)
    assert code == 2 and "--param" in err and "expected path=value" in err
    code, _, err = run(capsys, "list", "--order", "up", "--server", server)
    assert code == 2 and "--order" in err


def test_list_order_by_an_unknown_key_is_refused_by_the_api(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list", "--order-by", "name", "--server", url)
    assert code == 3 and out == "" and "order_by" in err and "Traceback" not in err
