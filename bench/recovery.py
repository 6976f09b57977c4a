"""Recovery from a dead worker: SIGKILL the process tree of the worker running a job, with a
second worker alive, and time the kill to the job running again on the other worker (its
claim's `started_at`, as the store has it). Repeated --reps times per contender (lease and
heartbeat settings), after one untimed cycle; the median and range are printed, with
/proc/loadavg before and after.

    python bench/recovery.py                        # the defaults (10 s lease, 2 s heartbeat)
    python bench/recovery.py --reps 10 --lease 10:2 --lease 30:7.5
    python bench/recovery.py --lease 120:30         # the old default lease (slow: ~2 min a cycle)

Runs against PostgreSQL (EPOCHAL_BENCH_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/postgres: a fresh database, dropped afterwards) and Redis
(EPOCHAL_BENCH_REDIS, default redis://127.0.0.1:6379/0, under a key prefix of its own), with the
API and two 1-process workers as `epochal api` and `epochal worker` start them. Each cycle's job
is cancelled once it runs again, so the cycles cost the recovery and little training.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from digits_setup import DIGITS_MLP
from service import free_port, wait_ready
from submit_load import fresh_database

from cli.main import api_command, worker_command

SPEC = {
    "name": "bench-recovery",
    "dataset": {"name": "digits", "validation_split": 0.2},
    "model": {"layers": DIGITS_MLP},
    "training": {
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "batch_size": 64,
        "epochs": 10_000,  # cancelled once it runs again
        "seed": 0,
    },
    "resources": {"device": "cpu"},
}


class Stack:
    """The API and workers, each leading its own process group (a kill reaches its pool)."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_worker(self, name: str) -> None:
        self.start(name, worker_command("cpu", 1, "info"))

    def running(self, worker: str) -> str:
        group = os.getpgid(int(worker.rsplit("/", 1)[1]))
        return next(name for name, p in self.processes.items() if p.pid == group)

    def kill(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes.pop(name).wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ready(stack: Stack, name: str) -> bool:
    log = stack.workdir / f"{name}.log"
    return log.exists() and " ready." in log.read_text(errors="replace")


def cycle(stack: Stack, client: httpx.Client, n: int) -> float:
    """One kill and recovery; returns the seconds from the kill to the claim elsewhere."""
    job_id = client.post("/v1/jobs", json=SPEC).json()["id"]

    def checkpointed() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if ((job["checkpoint"] or {}).get("last") or {}).get("epoch", 0) >= 1 else None

    job = wait_until(checkpointed, 300, "a checkpoint")
    name = stack.running(job["worker"])
    killed_at = datetime.now(UTC)
    stack.kill(name)

    def elsewhere() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["attempts"] == 2 and job["status"] == "running" else None

    moved = wait_until(elsewhere, 600, "the job to run again")
    seconds = (datetime.fromisoformat(moved["started_at"]) - killed_at).total_seconds()
    client.post(f"/v1/jobs/{job_id}/cancel", headers={"content-type": "application/json"})
    wait_until(
        lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled", 60, "cancel"
    )
    replacement = f"worker-{n}"
    stack.start_worker(replacement)
    wait_until(lambda: ready(stack, replacement), 120, "the new worker")
    return seconds


def contender(lease: float, heartbeat: float, reps: int) -> list[float]:
    postgres = os.environ.get(
        "EPOCHAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis = os.environ.get("EPOCHAL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    with (
        fresh_database(postgres) as db,
        tempfile.TemporaryDirectory(prefix="epochal-recovery-") as d,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
        env.update(
            EPOCHAL_DATABASE_URL=db,
            EPOCHAL_BROKER_URL=redis,
            EPOCHAL_BROKER_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}:",
            EPOCHAL_ARTIFACTS_DIR=f"{d}/artifacts",
            EPOCHAL_JOB_LEASE_SECONDS=str(lease),
            EPOCHAL_HEARTBEAT_SECONDS=str(heartbeat),
            EPOCHAL_CHECKPOINT_SECONDS="0",  # a checkpoint each epoch, as the kills assume
        )
        epochal = str(Path(sys.executable).parent / "epochal")
        subprocess.run([epochal, "migrate"], cwd=d, env=env, check=True, capture_output=True)
        stack = Stack(Path(d), env)
        port = free_port()
        try:
            stack.start("api", api_command("127.0.0.1", port, "warning"))
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, Path(d) / "api.log")
            for name in ("worker-a", "worker-b"):
                stack.start_worker(name)
            for name in ("worker-a", "worker-b"):
                wait_until(lambda name=name: ready(stack, name), 120, name)
            with httpx.Client(base_url=url, timeout=30) as client:
                cycle(stack, client, 0)  # untimed: a process's first job pays its imports
                times = []
                for n in range(1, reps + 1):
                    times.append(cycle(stack, client, n))
                    print(
                        f"  lease {lease:g}s, heartbeat {heartbeat:g}s: {times[-1]:.1f}s",
                        flush=True,
                    )
                return times
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument(
        "--lease",
        action="append",
        metavar="LEASE:HEARTBEAT",
        help="a contender's EPOCHAL_JOB_LEASE_SECONDS:EPOCHAL_HEARTBEAT_SECONDS (default 10:2)",
    )
    args = parser.parse_args()
    contenders = [tuple(float(v) for v in c.split(":")) for c in args.lease or ["10:2"]]
    print(f"loadavg before: {loadavg()}", flush=True)
    results = {c: contender(c[0], c[1], args.reps) for c in contenders}
    print(f"loadavg after: {loadavg()}")
    print("kill -9 of the worker's process tree -> running on the other worker (s):")
    for (lease, heartbeat), times in results.items():
        print(
            f"  lease {lease:g}s, heartbeat {heartbeat:g}s: median {statistics.median(times):.1f}, "
            f"range {min(times):.1f}-{max(times):.1f}, n={len(times)}"
        )


if __name__ == "__main__":
    main()
