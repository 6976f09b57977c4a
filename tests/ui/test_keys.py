"""The dashboard on a server that requires API keys (EPOCHAL_AUTH=required): its files are
public, every /v1 call needs a key, and the page asks for one on its first 401, keeps it, and
sends it on every call after.

The page is opened as a user elsewhere on the network would: at http://epochal.test:<port>/, a
host name that Chromium resolves to this machine, so the API sees a non-loopback Host and a
cross-machine Origin (nothing in the page or the server is told that it is a test).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack, epochal_command, fresh_stack, service_env
from tests.specs import DIGITS
from tests.ui.conftest import CHROMIUM

pytestmark = pytest.mark.e2e

HOST = "epochal.test"
KEYED = {"Failed to load resource: the server responded with a status of 401 (Unauthorized)"}


@pytest.fixture(scope="module")
def keyed(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A stack that requires keys (no worker: jobs stay queued), a write key of project
    `team` with a job, and a job of project `other` that the team's key must not show."""
    with fresh_stack(
        "ui-keys", postgres_server_url, redis_url, tmp_path_factory, auth="required"
    ) as (stack, settings):
        made: dict[str, str] = {}
        for project in ("team", "other"):
            key = create_key(settings, project)
            job = httpx.post(
                f"{stack.url}/v1/jobs",
                json={**DIGITS, "name": f"{project}-job"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert job.status_code == 201, job.text
            made[f"{project}_key"], made[f"{project}_job"] = key, job.json()["id"]
        yield stack, made


def create_key(settings: dict[str, Any], project: str) -> str:
    """As an operator would: `epochal keys create` against the stack's database."""
    made = subprocess.run(
        [epochal_command(), "keys", "create", "--project", project, "--role", "write"],
        env=service_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def remote_browser(browser: Any) -> Iterator[Any]:
    """Chromium that resolves epochal.test to this machine."""
    b = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[f"--host-resolver-rules=MAP {HOST} 127.0.0.1"],
    )
    yield b
    b.close()


@pytest.fixture
def remote(
    remote_browser: Any,
    keyed: tuple[Stack, dict[str, str]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[tuple[Any, list[dict[str, Any]], list[str]]]:
    """A page on http://epochal.test:<port>/, the /v1 requests it sends (method, path,
    Authorization), and the prompts it shows. Console errors fail the test, but for the
    browser's own line about each 401 (the prompt's cue)."""
    stack, _ = keyed
    port = httpx.URL(stack.url).port
    context = remote_browser.new_context(base_url=f"http://{HOST}:{port}")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and m.text not in KEYED else None,
    )
    sent: list[dict[str, Any]] = []

    def record(r: Any) -> None:
        path = httpx.URL(r.url).path
        if path.startswith("/v1"):
            auth = r.headers.get("authorization")
            sent.append({"method": r.method, "path": path, "auth": auth})

    page.on("request", record)
    prompts: list[str] = []
    yield page, sent, prompts
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def answer(page: Any, prompts: list[str], *keys: str) -> None:
    """Answer the page's prompts with `keys`, in order (and decline any after them)."""
    queue = list(keys)

    def on_dialog(dialog: Any) -> None:
        prompts.append(dialog.message)
        if dialog.type == "prompt" and queue:
            dialog.accept(queue.pop(0))
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)


def expect(locator: Any) -> Any:
    """Playwright's expect, imported when used: without playwright the tests skip (conftest)."""
    from playwright.sync_api import expect

    return expect(locator)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def bearer_of(made: dict[str, str]) -> str:
    return f"Bearer {made['team_key']}"


def test_the_files_are_public_and_the_api_is_not(keyed: tuple[Stack, dict[str, str]]) -> None:
    stack, made = keyed
    host = {"Host": f"{HOST}:{httpx.URL(stack.url).port}"}  # as a remote browser names it
    for path in ("/", "/ui/app.js", "/ui/lib/api.js", "/ui/vendor/uPlot.iife.min.js"):
        assert httpx.get(f"{stack.url}{path}", headers=host).status_code == 200, path
    refused = httpx.get(f"{stack.url}/v1/jobs", headers=host)
    assert refused.status_code == 401, refused.text
    ok = httpx.get(f"{stack.url}/v1/jobs", headers={**host, **bearer(made["team_key"])})
    assert [j["id"] for j in ok.json()["items"]] == [made["team_job"]]


def test_the_page_asks_for_a_key_once_and_sends_it_on_every_call(
    remote: tuple[Any, list[dict[str, Any]], list[str]], keyed: tuple[Stack, dict[str, str]]
) -> None:
    page, sent, prompts = remote
    _, made = keyed
    # A wrong key first: the server refuses it and the page asks again, saying so.
    answer(page, prompts, "epk_wrong_key", made["team_key"])
    page.goto("/#/jobs")
    table = page.get_by_test_id("jobs-table")
    table.locator("tr", has_text=made["team_job"]).wait_for()
    assert "team-job" in table.inner_text()
    assert made["other_job"] not in table.inner_text()  # the key's project only
    assert len(prompts) == 2 and "requires an API key" in prompts[0]
    assert "refused" in prompts[1]
    assert [s["auth"] for s in sent[:3]] == [None, "Bearer epk_wrong_key", bearer_of(made)]

    # Kept in this browser: a reload asks nothing, and every call carries the key.
    before = len(sent)
    page.reload()
    table.locator("tr", has_text=made["team_job"]).wait_for()
    assert len(prompts) == 2
    assert sent[before:] and all(s["auth"] == bearer_of(made) for s in sent[before:])
    assert page.locator("#key-status").inner_text() == "key set"


def test_a_change_from_the_page_carries_the_key_from_another_host(
    remote: tuple[Any, list[dict[str, Any]], list[str]], keyed: tuple[Stack, dict[str, str]]
) -> None:
    """What the job page's cancel button does, from the page's own origin on a non-loopback
    host name: a POST with the key and the browser's Origin header."""
    page, sent, prompts = remote
    stack, made = keyed
    answer(page, prompts, made["team_key"])
    page.goto("/#/jobs")
    page.get_by_test_id("jobs-table").locator("tr", has_text=made["team_job"]).wait_for()
    result = page.evaluate(
        """async (id) => {
          const { api } = await import("/ui/lib/api.js");
          try { return (await api(`/v1/jobs/${id}/cancel`, { method: "POST" })).status; }
          catch (e) { return `${e.status}: ${e.message}`; }
        }""",
        made["team_job"],
    )
    assert result == "cancelled"
    post = next(s for s in sent if s["method"] == "POST")
    assert post["auth"] == bearer_of(made) and len(prompts) == 1
    job = httpx.get(f"{stack.url}/v1/jobs/{made['team_job']}", headers=bearer(made["team_key"]))
    assert job.json()["status"] == "cancelled"


def test_calls_made_together_ask_once(
    remote: tuple[Any, list[dict[str, Any]], list[str]], keyed: tuple[Stack, dict[str, str]]
) -> None:
    """A page that starts several calls at once (the job page: the job, its metrics, its
    events) gets several 401s; the user is asked once, and every call is made again."""
    page, sent, prompts = remote
    _, made = keyed
    answer(page, prompts, made["team_key"])
    page.goto("/#/no-page")  # the router draws no page and calls nothing: only these calls
    counts = page.evaluate(
        """async (id) => {
          localStorage.clear();
          const { api } = await import("/ui/lib/api.js");
          const answers = await Promise.all([
            api("/v1/jobs"), api(`/v1/jobs/${id}`), api(`/v1/jobs/${id}/metrics`),
          ]);
          return answers.length;
        }""",
        made["team_job"],
    )
    assert counts == 3 and len(prompts) == 1
    keyless = [s for s in sent if s["auth"] is None]
    assert len(keyless) == 3 and all(s["auth"] == bearer_of(made) for s in sent[len(keyless) :])


def test_the_key_control_sets_and_forgets_the_key(
    remote: tuple[Any, list[dict[str, Any]], list[str]], keyed: tuple[Stack, dict[str, str]]
) -> None:
    page, sent, prompts = remote
    _, made = keyed

    def on_dialog(dialog: Any) -> None:
        prompts.append(dialog.type)
        dialog.accept(made["team_key"]) if dialog.type == "prompt" else dialog.accept()

    page.on("dialog", on_dialog)
    page.goto("/#/no-page")  # nothing called: the control alone sets the key
    control = page.get_by_test_id("key")
    assert control.inner_text() == "key" and page.locator("#key-status").inner_text() == ""
    control.click()
    expect(page.locator("#key-status")).to_have_text("key set")
    expect(control).to_have_text("forget key")
    assert page.evaluate("localStorage.getItem('epochal.key')") == made["team_key"]
    control.click()  # confirmed: forgotten
    expect(control).to_have_text("key")
    assert page.evaluate("localStorage.getItem('epochal.key')") is None
    assert prompts == ["prompt", "confirm"] and sent == []
