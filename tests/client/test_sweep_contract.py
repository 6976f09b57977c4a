"""The client and CLI against the sweep HTTP contract, without a sweep engine: a real local HTTP
server answers the contract's sample documents and records each request, so what the client sends
and how it reads the answers is checked here; tests/client/test_sweeps_client.py and
test_sweep_cli.py check the same against the real API and worker."""

from __future__ import annotations

import copy
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from rich.console import Console

from epochal_client import Client, EpochalAPIError, Leaderboard, Sweep, SweepRun
from epochal_client.cli import main
from epochal_client.cli.sweeps import leaderboard_table, parameters_table, progress_view

SWEEP: dict[str, Any] = {
    "id": "sw1",
    "name": "lr-batch",
    "status": "running",
    "method": "grid",
    "metric": {"name": "val_accuracy", "goal": "maximize"},
    "run_cap": 6,
    "max_parallel": 2,
    "trials": 6,
    "counts": {
        "queued": 0,
        "running": 1,
        "succeeded": 4,
        "failed": 0,
        "cancelled": 0,
        "pruned": 1,
    },
    "best": {"job_id": "j1", "value": 0.97, "params": {"training.batch_size": 32}},
    "spec": {
        "method": "grid",
        "parameters": {
            "training.batch_size": {"values": [16, 32, 64]},
            "training.optimizer.learning_rate": {
                "distribution": "log_uniform_values",
                "min": 0.0001,
                "max": 0.1,
            },
        },
    },
    "created_at": "2025-01-02T03:04:05Z",
    "finished_at": None,
    "added_later": "an engine may add fields",
}
BOARD: dict[str, Any] = {
    "sweep_id": "sw1",
    "metric": {"name": "val_accuracy", "goal": "maximize"},
    "trials": [
        {"rank": 1, "job_id": "j1", "status": "succeeded", "value": 0.97, "epoch": 12,
         "epochs_run": 12, "params": {"training.batch_size": 32}},
        {"rank": 2, "job_id": "j2", "status": "pruned", "value": 0.9, "epoch": 3,
         "epochs_run": 3, "params": {"training.batch_size": 64}},
        {"rank": None, "job_id": "j3", "status": "queued", "value": None, "epoch": None,
         "epochs_run": 0, "params": {"training.batch_size": 16}},
    ],
}  # fmt: skip


def job(job_id: str, batch_size: int) -> dict[str, Any]:
    return {
        "id": job_id, "name": "t", "tags": [], "status": "succeeded", "queue": "cpu",
        "spec": {"training": {"batch_size": batch_size}}, "progress": {"epoch": 2, "epochs": 2},
        "summary": {}, "error": None, "attempts": 1, "worker": None, "device": None,
        "cancel_requested": False, "created_at": "2025-01-02T03:04:05Z", "started_at": None,
        "finished_at": None, "sweep_id": "sw1",
    }  # fmt: skip


class Contract:
    """Answers as the contract says; `polls` GETs of the sweep before it reports `finished`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.polls = 2

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        self.requests.append((method, path, query, body))
        sweep = copy.deepcopy(SWEEP)
        if (method, path) == ("POST", "/v1/sweeps"):
            if "training.batch_size" not in body.get("parameters", {}):
                return 422, {"title": "Invalid sweep", "status": 422, "detail": "bad",
                             "errors": [{"loc": ["parameters", "model.x"], "msg": "no such path"}]}  # fmt: skip
            return 201, {**sweep, "status": "running"}
        if (method, path) == ("GET", "/v1/sweeps"):
            return 200, {"items": [sweep], "next_cursor": None}
        if (method, path) == ("GET", "/v1/sweeps/sw1"):
            self.polls -= 1
            if self.polls < 0:
                sweep.update(status="finished", finished_at="2025-01-02T03:05:00Z")
            return 200, sweep
        if (method, path) == ("GET", "/v1/sweeps/sw1/leaderboard"):
            board = copy.deepcopy(BOARD)
            board["trials"] = board["trials"][: int(query.get("limit", 100))]
            return 200, board
        if method == "POST" and path.startswith("/v1/sweeps/sw1/"):
            action = path.rsplit("/", 1)[1]
            if action == "resume":
                return 409, {"title": "Conflict", "status": 409, "detail": "sweep is running"}
            return 200, {**sweep, "status": {"pause": "paused", "cancel": "cancelled"}[action]}
        if (method, path) == ("GET", "/v1/jobs") and query.get("sweep_id") == "sw1":
            return 200, {"items": [job("j1", 32), job("j2", 64)], "next_cursor": None}
        if (method, path) == ("GET", "/v1/compare"):
            return 200, {"jobs": [{"id": i, "name": "t", "status": "succeeded"}
                                  for i in query["ids"].split(",")],
                         "params": {"training.batch_size": [32, 64]}, "metrics": {}, "series": {}}  # fmt: skip
        return 404, {"title": "Not found", "status": 404, "detail": f"{method} {path}"}


@pytest.fixture
def contract() -> Iterator[tuple[Contract, str]]:
    state = Contract()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = state.answer(self.command, url.path, dict(parse_qsl(url.query)), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            kind = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_models_read_the_contract_samples() -> None:
    sweep = Sweep.model_validate(SWEEP)
    assert (sweep.status, sweep.finished, sweep.metric.goal) == ("running", False, "maximize")
    assert (sweep.counts.done, sweep.counts.total, sweep.counts.pruned) == (5, 6, 1)
    assert sweep.best is not None and sweep.best.params == {"training.batch_size": 32}
    assert set(sweep.parameters) == {"training.batch_size", "training.optimizer.learning_rate"}
    assert Sweep.model_validate({**SWEEP, "status": "cancelled", "best": None}).finished
    board = Leaderboard.model_validate(BOARD)
    assert [t.rank for t in board.trials] == [1, 2, None]
    assert board.trials[2].value is None and board.trials[1].epochs_run == 3
    nan = Leaderboard.model_validate({**BOARD, "trials": [{**BOARD["trials"][0], "value": "NaN"}]})
    assert nan.trials[0].value != nan.trials[0].value  # NaN as the API spells it


def test_the_client_sends_the_contract_requests(
    contract: tuple[Contract, str], tmp_path: Path
) -> None:
    state, url = contract
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text("method: grid\nparameters:\n  training.batch_size: {values: [16, 32]}\n")
    with Client(url, retries=0) as c:
        created = c.create_sweep(spec_file)
        assert created.id == "sw1" and state.requests[-1][3]["method"] == "grid"
        assert c.list_sweeps(status="running", limit=5).items[0].id == "sw1"
        assert state.requests[-1][2] == {"status": "running", "limit": "5"}
        assert len(c.leaderboard("sw1", limit=2).trials) == 2
        assert state.requests[-1][1:3] == ("/v1/sweeps/sw1/leaderboard", {"limit": "2"})
        assert c.pause_sweep("sw1").status == "paused"
        assert c.cancel_sweep("sw1").status == "cancelled"
        with pytest.raises(EpochalAPIError) as e:
            c.resume_sweep("sw1")
        assert e.value.status == 409
        with pytest.raises(EpochalAPIError) as e:
            c.create_sweep({"method": "grid", "parameters": {"model.x": {"value": 1}}})
        assert e.value.status == 422 and "parameters.model.x: no such path" in str(e.value)

        seen: list[str] = []
        with pytest.raises(TimeoutError, match="sweep sw1 is still running"):
            c.wait_sweep("sw1", timeout=0, poll=0)
        done = c.wait_sweep("sw1", poll=0.01, on_progress=lambda s: seen.append(s.status))
        assert done.status == "finished" and seen == ["running", "finished"]


def test_a_sweep_run_reads_its_trials_best_and_top_comparison(
    contract: tuple[Contract, str],
) -> None:
    state, url = contract
    state.polls = 0
    with Client(url, retries=0) as c:
        run = c.sweep({"method": "grid", "parameters": {"training.batch_size": {"values": [32]}}})
        assert isinstance(run, SweepRun) and run.id == "sw1"
        assert run.wait(poll=0.01).status == "finished" and run.state.finished
        best = run.best()
        assert best is not None and (best.job_id, best.value) == ("j1", 0.97)
        trials = run.trials()
        assert [t.sweep_id for t in trials] == ["sw1", "sw1"]
        assert state.requests[-1][:2] == ("GET", "/v1/jobs")
        assert state.requests[-1][2]["sweep_id"] == "sw1"
        comparison = run.compare(top=3)
        assert state.requests[-1][2] == {"ids": "j1,j2"}  # the ranked ones only
        assert comparison.params == {"training.batch_size": [32, 64]}
        assert c.open_sweep("sw1").state.status == "finished"


def render(*renderables: Any) -> str:
    out = Console(file=io.StringIO(), width=200)
    for r in renderables:
        out.print(r)
    return out.file.getvalue()  # type: ignore[attr-defined]


def test_the_cli_tables_show_counts_best_params_and_ranks() -> None:
    sweep = Sweep.model_validate(SWEEP)
    text = render(progress_view(sweep), parameters_table(sweep))
    assert "best val_accuracy" in text and "0.97" in text and "j1" in text
    assert "best params: training.batch_size=32" in text
    assert "16, 32, 64" in text and "log_uniform_values(min=0.0001, max=0.1)" in text
    table = render(leaderboard_table(Leaderboard.model_validate(BOARD)))
    lines = [line for line in table.splitlines() if "j1" in line or "j2" in line or "j3" in line]
    assert ["j1" in lines[0], "j2" in lines[1], "j3" in lines[2]] == [True, True, True]
    assert "pruned" in lines[1] and "training.batch_size" in table and "maximize" in table
    no_best = render(progress_view(Sweep.model_validate({**SWEEP, "best": None})))
    assert "best params" not in no_best


def test_the_cli_commands_against_the_contract(
    contract: tuple[Contract, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = contract
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"parameters": {"training.batch_size": {"values": [32]}}}))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, "--server", url])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("sweep", str(spec), "--watch", "--poll", "0.01", "--top", "2")
    assert code == 0 and out.splitlines()[0] == "sw1"
    assert "finished" in out and "parameters" in out and "rank" in out and "j2" in out
    assert "j3" not in out  # --top 2
    code, out, _ = run("sweep-status", "sw1")
    assert code == 0 and "lr-batch" in out and "succeeded" in out
    code, out, _ = run("sweep-list", "--status", "running")
    assert code == 0 and "1 sweeps" in out and "sw1" in out
    code, out, _ = run("leaderboard", "sw1", "--limit", "1")
    assert code == 0 and "j1" in out and "j2" not in out
    assert run("sweep-pause", "sw1")[:2] == (0, "sw1  paused\n")
    assert run("sweep-cancel", "sw1")[:2] == (0, "sw1  cancelled\n")
    code, out, err = run("sweep-resume", "sw1")
    assert code == 3 and out == "" and "409" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: {model.x: {value: 1}}\n")
    code, out, err = run("sweep", str(bad))
    assert code == 3 and "422" in err and "model.x" in err and "Traceback" not in err
