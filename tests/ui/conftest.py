"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
headless), against one real API and worker (PostgreSQL + Redis) shared by the package.

Without Chromium or the playwright package the tests are skipped, saying what to install
(`apt-get install chromium`, `pip install -e '.[test]'`); with EPOCHAL_REQUIRE_BROWSER=1 (set by
.ci/run, which installs chromium) they fail instead. A failed test leaves a screenshot of its
page in its temporary folder (the path is printed in the report)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack, stack_with_a_worker
from tests.ui.helpers import screenshot_if_failed

CHROMIUM = os.environ.get("EPOCHAL_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package: pip install -e '.[test]'"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"Chromium at {CHROMIUM}: apt-get install chromium (or set EPOCHAL_CHROMIUM)"
    return None


# One Chromium per test module: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and a later test of another package in the same process that calls
# asyncio.run() would fail (tests run -n 2 --dist loadfile: any module may follow these).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if missing := _missing():
        if os.environ.get("EPOCHAL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tests need {missing}")
        pytest.skip(f"the browser tests need {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="package")
def stack(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack_with_a_worker("ui", postgres_server_url, redis_url, tmp_path_factory) as s:
        yield s


@pytest.fixture
def page(
    browser: Any, stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Any]:
    """A fresh page on the dashboard's origin; the console's errors fail the test."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1400, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    screenshot_if_failed(request, p, tmp_path)
    context.close()
    assert not errors, f"the page logged errors: {errors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.report_call = report  # type: ignore[attr-defined]
    return report
