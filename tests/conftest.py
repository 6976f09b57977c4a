"""Shared fixtures: real servers (named by environment variables, or throwaway ones) and settings.

EPOCHAL_TEST_DATABASE_URL  a PostgreSQL server (any database on it; tests create their own)
EPOCHAL_TEST_REDIS_URL     a Redis server (tests isolate their keys with a unique prefix)
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import torch

import migrations
from core.settings import Settings
from core.store.db import dispose_engine
from tests.s3 import CREDENTIALS, S3Server, moto_server
from tests.servers import fresh_postgres_database, throwaway_postgres, throwaway_redis


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test models are tiny: one thread trains them fastest, and on a shared 2-core
    machine two threads that wait on each other at every step make them many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_epochal_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; a developer's EPOCHAL_* must not leak in."""
    for name in os.environ:
        if name.startswith("EPOCHAL_") and not name.startswith("EPOCHAL_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("EPOCHAL_TEST_REDIS_URL"):
        yield url
        return
    with throwaway_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    if url := os.environ.get("EPOCHAL_TEST_DATABASE_URL"):
        yield url
        return
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'epochal.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each test using it (or the fixtures below) runs twice: on SQLite and on PostgreSQL.
    `@pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)` picks one."""
    return request.param


@pytest.fixture
def empty_database_url(store_kind: str, request: pytest.FixtureRequest) -> str:
    name = "empty_sqlite_url" if store_kind == "sqlite" else "empty_postgres_url"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per test process; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "epochal.db"
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    dispose_engine(url)
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated once per test process, with no connection left open
    (CREATE DATABASE ... TEMPLATE requires that); tests get copies of it."""
    with fresh_postgres_database(postgres_server_url) as url:
        migrations.upgrade(url)
        dispose_engine(url)
        yield url


@pytest.fixture
def database_url(store_kind: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty store on SQLite and on PostgreSQL: a copy of one migrated once per
    test process, which is what running the migrations would give, at a fraction of the time
    (the migrations themselves are tests/migrations' to test)."""
    if store_kind == "sqlite":
        template = request.getfixturevalue("migrated_sqlite_template")
        path = request.getfixturevalue("tmp_path") / "epochal.db"
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("migrated_postgres_template")
    with fresh_postgres_database(request.getfixturevalue("postgres_server_url"), template) as url:
        yield url


def make_settings(database_url: str, broker_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Keys are off unless a test asks for them (the in-process TestClient's requests come from
    no loopback address, so the default would require keys); tests/api/test_auth.py covers them."""
    values: dict[str, Any] = {"auth": "off", **overrides}
    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        broker_key_prefix=f"test-{uuid.uuid4().hex[:8]}:",
        artifacts_dir=tmp_path / "artifacts",
        **values,
    )


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, redis_url, tmp_path)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the session; each test takes a bucket of its own."""
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard AWS variables the S3 store reads (credentials, region)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end files first: the two test processes (pytest-xdist, a file each at a time)
    start the longest work early instead of one finishing it alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)
