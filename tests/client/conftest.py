"""One real API and one real worker (PostgreSQL + Redis) for the client and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, stack_with_a_worker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="package")
def stack(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack_with_a_worker("client", postgres_server_url, redis_url, tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="package")
def url(stack: Stack) -> str:
    return stack.url
