"""The server's verbs of the `epochal` command: `serve | api | worker | migrate | keys`.

The command itself is the light client's (`epochal_client.cli`); `register` is this
distribution's entry point in the group `epochal.commands`, which adds these verbs to it."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import migrations
from cli import key_commands
from cli.embedded import EmbeddedBroker
from core import logs
from core.settings import EMBEDDED, get_settings, is_loopback

log = logging.getLogger("epochal")


def api_command(host: str, port: int, level: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:served_app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        level,
    ]


def worker_command(queues: str, concurrency: int, level: str) -> list[str]:
    # prefork: training runs in a child process, so a crash there requeues the job (acks_late).
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.main",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        level,
        "--hostname",
        # Unique per worker, also for several started by one process (a test's stack): the
        # name keys its row in the workers registry and the release of its jobs on shutdown.
        f"epochal-{queues.replace(',', '-')}-{os.getpid()}-{secrets.token_hex(3)}@%h",
    ]


def migrate(_: argparse.Namespace) -> int:
    url = get_settings().database_url
    migrations.upgrade(url)
    log.info("store at %s is up to date", url.split("@")[-1])
    return 0


def api_env(host: str) -> dict[str, str]:
    """The API's environment: the address it listens on, which decides whether keys are
    required (EPOCHAL_AUTH unset: off on a loopback address only), said in the log."""
    settings = get_settings().model_copy(update={"api_host": host})
    if settings.auth == "off" and not is_loopback(host):
        log.warning(
            "API keys are OFF on %s (EPOCHAL_AUTH=off): anyone who reaches this port can train, "
            "read and delete everything",
            host,
        )
    elif settings.auth_required:
        log.info("API keys are required on %s (epochal keys create makes one)", host)
    else:
        log.info("API keys are off on the loopback address %s (EPOCHAL_AUTH=required asks)", host)
    return {"EPOCHAL_API_HOST": host}


def run_api(args: argparse.Namespace) -> int:
    """Becomes uvicorn (exec), so that a SIGTERM from docker or a supervisor reaches it."""
    s = get_settings()
    host = args.host or s.api_host
    command = api_command(host, args.port or s.api_port, s.log_level)
    os.execve(command[0], command, {**os.environ, **api_env(host)})


def run_worker(args: argparse.Namespace) -> int:
    """Becomes the Celery worker (exec), so that a SIGTERM reaches it and it hands its jobs
    back to the queue."""
    settings = get_settings()
    concurrency = args.concurrency or settings.worker_concurrency
    command = worker_command(args.queues, concurrency, settings.log_level)
    os.execv(command[0], command)


def serve(args: argparse.Namespace) -> int:
    """Migrate, then run the API and a worker in the foreground; Ctrl-C stops everything."""
    settings = get_settings()
    broker = None
    env = dict(os.environ)
    if settings.broker_url == EMBEDDED:
        broker = EmbeddedBroker(settings.embedded_broker_dir.resolve())
        env["EPOCHAL_BROKER_URL"] = broker.url
        log.info("embedded broker: %s", broker.url)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    migrate(args)
    host, port = args.host or settings.api_host, args.port or settings.api_port
    env = {**env, **api_env(host)}
    # Each child leads its own process group, so stopping it reaches its pool processes too.
    children = [
        subprocess.Popen(
            api_command(host, port, settings.log_level), env=env, start_new_session=True
        ),
        subprocess.Popen(
            worker_command(
                args.queues, args.concurrency or settings.worker_concurrency, settings.log_level
            ),
            env=env,
            start_new_session=True,
        ),
    ]
    log.info("Epochal is up: http://%s:%s (API docs at /docs). Ctrl-C stops it.", host, port)
    return _supervise(children, broker)


def _supervise(children: list[subprocess.Popen[bytes]], broker: EmbeddedBroker | None) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        exited = [c for c in children if c.poll() is not None]
        if exited:
            code = exited[0].returncode or 1
            log.error("%s exited (%s); stopping", exited[0].args[2:5], exited[0].returncode)
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # the worker puts a running job back in the queue
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.args[2:5])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # and anything it left behind
    if broker is not None:
        broker.close()
    return 0 if stopping else code


def server_logging(verbose: bool) -> None:
    """The service's log format and level (EPOCHAL_LOG_FORMAT, EPOCHAL_LOG_LEVEL); a host's own
    logging (a test's) stays."""
    if not logging.root.handlers:
        settings = get_settings()
        logs.configure(settings.log_format, settings.log_level)


def register(sub: Any) -> None:
    """Add the server's verbs to `epochal`'s subparsers."""

    def add(name: str, func: object, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func, setup_logging=server_logging)
        return sp

    for sp in (
        add(
            "serve",
            serve,
            "migrate, then run the API and a worker (embedded broker "
            "unless EPOCHAL_BROKER_URL is set)",
        ),
        add("api", run_api, "run the HTTP API"),
    ):
        sp.add_argument("--host", default=None)
        sp.add_argument("--port", type=int, default=None)
    # One local worker takes both queues; a dedicated one takes what it is started for.
    for sp, queues in (
        (sub.choices["serve"], "cpu,gpu"),
        (add("worker", run_worker, "run a worker"), "cpu"),
    ):
        sp.add_argument(
            "--queues", default=queues, help=f"comma-separated: cpu, gpu (default {queues})"
        )
        sp.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="jobs trained at once, each with cores // N torch threads "
            "(default EPOCHAL_WORKER_CONCURRENCY, 1)",
        )
    add("migrate", migrate, "apply the store's migrations")
    key_commands.register(sub, server_logging)
