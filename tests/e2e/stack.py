"""Real processes for end-to-end tests: the API (uvicorn) and workers (celery), as `epochal` runs them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from cli.main import api_command, worker_command
from tests.servers import free_port, fresh_postgres_database

FINISHED = {"succeeded", "failed", "cancelled"}


def service_env(**settings: Any) -> dict[str, str]:
    """This environment without any EPOCHAL_* setting of the caller's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
    env.update({f"EPOCHAL_{k.upper()}": str(v) for k, v in settings.items()})
    # The test models are tiny (see tests/conftest.py): one torch thread per worker trains them
    # fastest, and on a busy machine threads that wait on each other make them many times slower.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class Stack:
    def __init__(self, workdir: Path, **settings: Any):
        self.workdir = workdir
        self.env = service_env(**settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.url = ""

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_api(self, level: str = "warning") -> str:
        port = free_port()
        self._spawn("api", api_command("127.0.0.1", port, level))
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(self.url), 60, "the API to be ready", self)
        return self.url

    def start_worker(self, name: str = "worker", queues: str = "cpu") -> subprocess.Popen[bytes]:
        return self._spawn(name, worker_command(queues, 1, "info"))

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children: a crash, with no chance to clean up."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes.pop(name).wait(10)

    def running(self, worker: str) -> str:
        """The name of the started process whose tree runs `worker` (a job's "host/pid")."""
        group = os.getpgid(int(worker.rsplit("/", 1)[1]))
        return next(name for name, p in self.processes.items() if p.pid == group)

    def terminate(self, name: str, timeout: float) -> int:
        """SIGTERM the process (as docker stop or Ctrl-C would) and wait for it to exit."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} (last lines)\n"
            + "\n".join(p.read_text(errors="replace").splitlines()[-40:])
            for p in sorted(self.workdir.glob("*.log"))
        )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Any, timeout: float, what: str, stack: Stack | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n{stack.logs() if stack else ''}"
    )


def wait_for_epoch(client: httpx.Client, job_id: str, epoch: int, stack: Stack) -> None:
    def reached() -> bool:
        return client.get(f"/v1/jobs/{job_id}").json()["progress"]["epoch"] >= epoch

    wait_until(reached, 120, f"job {job_id} to reach epoch {epoch}", stack)


@contextlib.contextmanager
def own_stack(workdir: Path, **settings: Any) -> Iterator[Stack]:
    """A migrated store and a running API of its own; workers are the test's to start."""
    migrate(workdir, settings)
    stack = Stack(workdir, **settings)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def fresh_stack(
    name: str, postgres_server_url: str, redis_url: str, tmp: Any, **extra: Any
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """A real API, no worker yet, on a fresh PostgreSQL database and Redis keys of its own
    (`tmp`: pytest's tmp_path_factory; `extra`: more settings, e.g. auth="required"), with
    its settings (for the server-side commands a test runs against the same store)."""
    with fresh_postgres_database(postgres_server_url) as database_url:
        settings = {
            "database_url": database_url,
            "broker_url": redis_url,
            "broker_key_prefix": f"{name}-{uuid.uuid4().hex[:8]}:",
            "artifacts_dir": tmp.mktemp("artifacts"),
            **extra,
        }
        with own_stack(tmp.mktemp(f"{name}-stack"), **settings) as stack:
            yield stack, settings


@contextlib.contextmanager
def stack_with_a_worker(
    name: str, postgres_server_url: str, redis_url: str, tmp: Any
) -> Iterator[Stack]:
    """`fresh_stack` with one real worker, for a package of tests to share."""
    with fresh_stack(name, postgres_server_url, redis_url, tmp) as (stack, _):
        stack.start_worker()
        yield stack


def wait_for_job(
    client: httpx.Client,
    job_id: str,
    statuses: set[str],
    timeout: float,
    stack: Stack | None = None,
) -> dict:
    def check() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_until(check, timeout, f"job {job_id} to be {statuses}", stack)


def epochal_command() -> str:
    """The console script installed beside this interpreter (the venv's `epochal`)."""
    return str(Path(sys.executable).parent / "epochal")


def migrate(workdir: Path, settings: dict) -> None:
    """As an operator would: `epochal migrate`."""
    subprocess.run(
        [epochal_command(), "migrate"],
        cwd=workdir,
        env=service_env(**settings),
        check=True,
        capture_output=True,
    )
