"""A PostgreSQL + Redis stack shared by the end-to-end tests of a module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, own_stack
from tests.servers import fresh_postgres_database


@pytest.fixture(scope="module")
def production_settings(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    with fresh_postgres_database(postgres_server_url) as database_url:
        yield {
            "database_url": database_url,
            "broker_url": redis_url,
            "broker_key_prefix": f"e2e-{uuid.uuid4().hex[:8]}:",
            "artifacts_dir": tmp_path_factory.mktemp("artifacts"),
        }


@pytest.fixture(scope="module")
def stack(production_settings: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(tmp_path_factory.mktemp("stack"), **production_settings) as s:
        s.start_worker()
        yield s
