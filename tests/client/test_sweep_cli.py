"""`epochal sweep | sweep-status | sweep-list | leaderboard | sweep-pause | sweep-resume |
sweep-cancel` against a real API and worker."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("core.sweeps")  # runs once the sweep engine is merged

from epochal_client import Client
from epochal_client.cli import main
from tests.client.test_sweeps_client import LR, grid
from tests.e2e.stack import epochal_command, service_env

pytestmark = pytest.mark.e2e


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, spec: dict[str, Any], suffix: str) -> Path:
    path = tmp_path / f"sweep-{uuid.uuid4().hex[:6]}{suffix}"
    path.write_text(yaml.safe_dump(spec) if suffix == ".yaml" else json.dumps(spec))
    return path


def test_sweep_watch_then_status_leaderboard_and_list(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"cli-sw-{uuid.uuid4().hex[:8]}"
    path = write(tmp_path, grid(tag, [0.001, 0.01, 0.1]), ".yaml")
    code, out, err = run(capsys, "sweep", str(path), "--watch", "--poll", "0.2", "--server", url)
    assert code == 0, err
    sweep_id = out.splitlines()[0]
    sweep = Client(url).get_sweep(sweep_id)
    assert sweep.status == "finished" and sweep.best is not None
    assert f"grid-{tag}" in out and "parameters" in out and LR in out
    assert "finished" in out and f"{sweep.best.value:.4g}" in out  # the live table's last state
    assert "rank" in out and sweep.best.job_id in out  # then the leaderboard

    code, out, _ = run(capsys, "sweep-status", sweep_id, "--server", url)
    assert code == 0 and sweep_id in out and "succeeded" in out and "best params" in out
    code, out, _ = run(capsys, "leaderboard", sweep_id, "--limit", "2", "--server", url)
    assert code == 0 and sweep.best.job_id in out
    assert sum(j.id in out for j in Client(url).iter_jobs(sweep_id=sweep_id)) == 2
    code, out, _ = run(capsys, "sweep-list", "--status", "finished", "--server", url)
    assert code == 0 and sweep_id in out and "3/3" in out


def test_a_json_sweep_paused_resumed_and_cancelled(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = grid(f"cli-sw-{uuid.uuid4().hex[:8]}", [0.001, 0.002, 0.003], max_parallel=1)
    spec["base"]["training"]["epochs"] = 2000
    code, out, err = run(capsys, "sweep", str(write(tmp_path, spec, ".json")), "--server", url)
    assert code == 0, err
    sweep_id = out.splitlines()[0]
    assert run(capsys, "sweep-pause", sweep_id, "--server", url)[:2] == (
        0,
        f"{sweep_id}  paused\n",
    )
    assert run(capsys, "sweep-resume", sweep_id, "--server", url)[1] == f"{sweep_id}  running\n"
    assert run(capsys, "sweep-cancel", sweep_id, "--server", url)[1] == f"{sweep_id}  cancelled\n"
    code, out, err = run(capsys, "sweep-resume", sweep_id, "--server", url)
    assert code == 3 and out == "" and "409" in err
    for job in Client(url).iter_jobs(sweep_id=sweep_id):
        Client(url).wait(job.id, timeout=60, poll=0.2)


def test_a_bad_sweep_prints_the_problem_and_exits_3(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = grid("bad", [0.01])
    spec["parameters"]["model.layers[5].units"] = {"values": [4]}
    code, out, err = run(capsys, "sweep", str(write(tmp_path, spec, ".yaml")), "--server", url)
    assert code == 3 and out == "" and "422" in err and "model.layers[5].units" in err
    assert "Traceback" not in err


def test_the_console_script_reads_epochal_url(url: str) -> None:
    result = subprocess.run(
        [epochal_command(), "sweep-list", "--limit", "1"],
        env=service_env(url=url),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and " sweeps" in result.stdout, result.stderr


def test_sweep_list_pages_with_the_cursor_it_prints_or_all(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(url)
    made = []
    for _ in range(2):  # cancelled at once: only the listing matters here
        spec = grid(f"cli-page-{uuid.uuid4().hex[:8]}", [0.001], max_parallel=1)
        spec["base"]["training"]["epochs"] = 2000
        made.append(client.create_sweep(spec).id)
        client.cancel_sweep(made[-1])
    code, out, err = run(capsys, "sweep-list", "--limit", "1", "--server", url)
    assert code == 0 and "1 sweeps" in out and made[1] in out, err  # newest first
    [cursor] = re.findall(r"more: --cursor (\S+) \(or --all\)", out)
    code, out, _ = run(capsys, "sweep-list", "--limit", "1", "--cursor", cursor, "--server", url)
    assert code == 0 and made[0] in out and made[1] not in out

    code, out, _ = run(capsys, "sweep-list", "--limit", "1", "--json", "--server", url)
    page = json.loads(out)
    assert [s["id"] for s in page["items"]] == [made[1]] and page["next_cursor"] == cursor
    code, out, _ = run(
        capsys, "sweep-list", "--limit", "1", "--cursor", cursor, "--json", "--server", url
    )
    assert [s["id"] for s in json.loads(out)["items"]] == [made[0]]
    # --all: every page, one sweep at a time here, and no cursor left.
    code, out, _ = run(capsys, "sweep-list", "--limit", "1", "--all", "--json", "--server", url)
    everything = json.loads(out)
    ids = [s["id"] for s in everything["items"]]
    assert code == 0 and everything["next_cursor"] is None and ids[:2] == [made[1], made[0]]
    assert ids == [s.id for s in client.iter_sweeps(limit=100)] and len(ids) == len(set(ids))
    code, out, _ = run(capsys, "sweep-list", "--status", "cancelled", "--all", "--server", url)
    assert code == 0 and made[0] in out and made[1] in out and "--cursor" not in out
    for sweep_id in made:
        for job in client.iter_jobs(sweep_id=sweep_id):
            client.wait(job.id, timeout=60, poll=0.2)


def test_sweep_list_takes_a_cursor_or_all_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sweep-list", "--cursor", "c", "--all")
    assert code == 2 and out == "" and "not allowed with argument" in err
