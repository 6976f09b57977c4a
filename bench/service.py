"""A service of its own for a benchmark: `epochal serve` in a temporary directory (SQLite, the
embedded broker, one worker), as a user's `make run` starts it.

The scripts are run as `python bench/<script>.py`, which puts this folder on the import path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from epochal_client import Client


@contextlib.contextmanager
def own_service(
    concurrency: int, queues: str = "cpu", env: dict[str, str] | None = None
) -> Iterator[str]:
    """`epochal serve` with a worker of `concurrency` processes on `queues`; `env` adds
    settings. Yields the API's URL; stopped (and its directory removed) on the way out."""
    with tempfile.TemporaryDirectory(prefix="epochal-bench-") as workdir:
        port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
        environment.update(
            EPOCHAL_DATABASE_URL=f"sqlite:///{workdir}/epochal.db",
            EPOCHAL_ARTIFACTS_DIR=f"{workdir}/artifacts",
            EPOCHAL_EMBEDDED_BROKER_DIR=f"{workdir}/broker",
            EPOCHAL_LOG_LEVEL="warning",
            **(env or {}),
        )
        command = [
            str(Path(sys.executable).parent / "epochal"),
            "serve",
            "--port",
            str(port),
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
        ]
        log_path = Path(workdir) / "serve.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                command, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_ready(url, log_path, server, timeout=120)
                yield url
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(
    url: str, log: Path, process: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    """Until the API answers /readyz; exits with the log's tail if it does not in time (or
    `process` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(
                f"the service exited ({process.returncode}):\n{log.read_text(errors='replace')}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"the API did not get ready:\n{log.read_text(errors='replace')[-3000:]}")


def service_client(stack: contextlib.ExitStack, server: str | None, workers: int) -> Client:
    """A client of `server`, or of a service of `workers` processes started here (stopped with
    `stack`); says which."""
    url = server or stack.enter_context(own_service(workers))
    client = stack.enter_context(Client(url))
    print(f"Epochal at {url}", flush=True)
    return client
