"""One real API and one real worker (PostgreSQL + Redis) for the client and CLI tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, own_stack
from tests.servers import fresh_postgres_database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="package")
def stack(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with fresh_postgres_database(postgres_server_url) as database_url:
        settings = {
            "database_url": database_url,
            "broker_url": redis_url,
            "broker_key_prefix": f"client-{uuid.uuid4().hex[:8]}:",
            "artifacts_dir": tmp_path_factory.mktemp("artifacts"),
        }
        with own_stack(tmp_path_factory.mktemp("client-stack"), **settings) as s:
            s.start_worker()
            yield s


@pytest.fixture(scope="package")
def url(stack: Stack) -> str:
    return stack.url
