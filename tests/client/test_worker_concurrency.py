"""`epochal worker` without --concurrency takes EPOCHAL_WORKER_CONCURRENCY; the flag wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli import main as cli
from core.settings import get_settings
from epochal_client.cli import main


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The commands `epochal worker` would become, instead of becoming them."""
    seen: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: seen.append(argv))
    monkeypatch.delenv("EPOCHAL_WORKER_CONCURRENCY", raising=False)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def concurrency(argv: list[str]) -> str:
    return argv[argv.index("--concurrency") + 1]


def test_the_setting_is_the_default_and_the_flag_wins(
    execs: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["worker"])
    monkeypatch.setenv("EPOCHAL_WORKER_CONCURRENCY", "2")
    get_settings.cache_clear()
    main(["worker"])
    main(["worker", "--concurrency", "3"])
    assert [concurrency(argv) for argv in execs] == ["1", "2", "3"]
