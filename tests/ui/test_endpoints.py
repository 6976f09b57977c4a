"""The dashboard calls only endpoints of the OpenAPI document (issue 14).

Two checks. The static one reads every script under api/ui/static (vendor/ aside) for the /v1
paths it names, in string and template literals (`${...}` parts are path parameters, the query
string is cut), with the method where it is written beside the path (`method: "POST"`), and
looks each up in `create_app(...).openapi()`: a page that calls a route that does not exist, or
with a method the route does not take, fails it without a browser. The runtime one opens each
page in Chromium and checks every /v1 request the page made against the document's path
templates: it also catches a path built in a way the scanner cannot read.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from tests.conftest import make_settings
from tests.core.sweeps.helpers import sweep_spec
from tests.e2e.stack import Stack, wait_for_job
from tests.specs import DIGITS, SLOW_DIGITS
from tests.ui.helpers import cancel, expect

STATIC = Path(__file__).resolve().parents[2] / "api" / "ui" / "static"
# A quoted or back-quoted literal that starts with /v1/ (or is /v1 itself).
LITERAL = re.compile(r"""(?P<q>["'`])(?P<path>/v1(?:/[^"'`\s]*)?)(?P=q)""")
# The method written after the path, within the same call: `{ method: "POST" ... }`.
METHOD = re.compile(
    r"""(?:(?!["'`]/v1)[^;]){0,200}?\bmethod\s*:\s*["'`](?P<m>[A-Za-z]+)["'`]""", re.S
)
TEMPLATE_PART = re.compile(r"\$\{[^}]*\}")
# Comments (whole-line and trailing `// ...`, and /* ... */): examples there are not calls.
COMMENT = re.compile(r"/\*.*?\*/|(?:^|(?<=\s))//.*?$", re.S | re.M)


def normalize(path: str) -> str:
    """`/v1/jobs/${id}/metrics?names=x` → `/v1/jobs/{}/metrics`."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    return TEMPLATE_PART.sub("{}", path).rstrip("/") or "/"


def template_of(openapi_path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", openapi_path)


def scan(root: Path) -> list[tuple[str, int, str, str | None]]:
    """(file, line, normalized path, method or None) for each /v1 literal of each script."""
    calls = []
    for script in sorted(root.rglob("*.js")):
        if "vendor" in script.relative_to(root).parts:
            continue
        # Blanked, not cut: the line numbers stay those of the file.
        text = COMMENT.sub(lambda c: re.sub(r"[^\n]", " ", c[0]), script.read_text())
        for m in LITERAL.finditer(text):
            method = METHOD.match(text, m.end())
            line = text.count("\n", 0, m.start()) + 1
            name = str(script.relative_to(root))
            calls.append(
                (name, line, normalize(m["path"]), method["m"].upper() if method else None)
            )
    return calls


def routes(openapi: dict[str, Any]) -> dict[str, set[str]]:
    """Normalized path template → the methods it answers."""
    return {
        template_of(path): {m.upper() for m in ops if m != "parameters"}
        for path, ops in openapi["paths"].items()
    }


def methods_of(path: str, known: dict[str, set[str]]) -> set[str] | None:
    """The methods the document gives `path` (`/v1/jobs/abc` as sent, or `/v1/jobs/{}` as
    scanned), None when no template has its shape. A template's `{}` takes any segment, a
    scanned `{}` only a template's `{}`: `/v1/jobs/${id}/${verb}` matches no route, since the
    scanner cannot tell which words `verb` holds (the pages write each action's path out)."""
    parts = path.rstrip("/").split("/")
    found = None
    for template, methods in known.items():
        t = template.split("/")
        if len(t) == len(parts) and all(a == "{}" or a == b for a, b in zip(t, parts, strict=True)):
            found = (found or set()) | methods
    return found


def unknown(calls: list[tuple[str, int, str, str | None]], known: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, line, path, method in calls:
        methods = methods_of(path, known)
        if methods is None:
            problems.append(f"{name}:{line}: {path} is not in the OpenAPI document")
        elif method and method not in methods:
            problems.append(f"{name}:{line}: {method} {path} (it takes {sorted(methods)})")
    return problems


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    folder = tmp_path_factory.mktemp("openapi")
    settings = make_settings(f"sqlite:///{folder / 'epochal.db'}", "redis://unused:1/0", folder)
    return routes(create_app(settings).openapi())


def test_every_path_the_pages_call_is_in_the_openapi_document(known: dict[str, set[str]]) -> None:
    calls = scan(STATIC)
    # A scanner that finds nothing passes anything: each page module that calls the API names
    # a path of its own, and all of them together more than a handful.
    callers = {
        str(f.relative_to(STATIC))
        for f in (STATIC / "pages").glob("*.js")
        if re.search(r"\b(api|followEvents)\(", f.read_text())
    }
    assert callers <= {name for name, *_ in calls}, f"the scanner found only {calls}"
    assert len(calls) > 5, f"the scanner found only {calls}"
    assert {path for _, _, path, _ in calls} >= {"/v1/jobs", "/v1/jobs/{}/events"}
    assert unknown(calls, known) == []


def test_the_check_fails_on_a_made_up_endpoint_or_method(
    known: dict[str, set[str]], tmp_path: Path
) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "vendor").mkdir()
    (tmp_path / "pages" / "bad.js").write_text(
        'const a = await api("/v1/nope");\n'
        'const b = await api(`/v1/jobs/${id}/explode?now=1`, { method: "POST" });\n'
        'await api(`/v1/jobs/${job.id}/${verb}`, { method: "POST" });\n'
        'await api(`/v1/jobs/${job.id}`, { method: "PUT", body: {} });\n'
        'await api("/v1/jobs", { query: { limit: 5 } }); // api("/v1/commented-out")\n'
        '/* api("/v1/commented",\n { method: "POST" }) */ fetch("http://x//v1/y");\n'
    )
    (tmp_path / "vendor" / "lib.js").write_text('fetch("/v1/also-nope");\n')  # not ours
    calls = scan(tmp_path)
    assert [(p, m) for _, _, p, m in calls] == [
        ("/v1/nope", None),
        ("/v1/jobs/{}/explode", "POST"),
        ("/v1/jobs/{}/{}", "POST"),
        ("/v1/jobs/{}", "PUT"),
        ("/v1/jobs", None),
    ]
    assert unknown(calls, known) == [
        "pages/bad.js:1: /v1/nope is not in the OpenAPI document",
        "pages/bad.js:2: /v1/jobs/{}/explode is not in the OpenAPI document",
        "pages/bad.js:3: /v1/jobs/{}/{} is not in the OpenAPI document",
        "pages/bad.js:4: PUT /v1/jobs/{} (it takes ['DELETE', 'GET'])",
    ]


# The runtime check: every request each page makes, as the browser sent it.


@pytest.mark.e2e
def test_the_pages_request_only_openapi_paths(
    page: Any, stack: Stack, known: dict[str, set[str]]
) -> None:
    """Visits each page with real objects behind it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # once `page` did not skip

    with stack.client() as client:
        one = {**DIGITS, "training": {**DIGITS["training"], "epochs": 1}}
        a = client.post("/v1/jobs", json=one).json()["id"]
        b = client.post("/v1/jobs", json={**one, "tags": ["other"]}).json()["id"]
        grid = {"training.optimizer.learning_rate": {"values": [0.01, 0.1]}}
        sweep = client.post("/v1/sweeps", json=sweep_spec(parameters=grid)).json()["id"]
        for job in (a, b):
            wait_for_job(client, job, {"succeeded", "failed"}, 60, stack)
    requested: list[tuple[str, str]] = []

    def record(request: Any) -> None:
        path = httpx.URL(request.url).path
        if path.startswith("/v1"):
            requested.append((request.method, path))

    page.on("request", record)
    routes_ = {
        "jobs": "#/jobs",
        "job": f"#/jobs/{a}",
        "compare": f"#/compare?ids={a},{b}",
        "sweeps": "#/sweeps",
        "sweep": f"#/sweeps/{sweep}",
        "datasets": "#/datasets",
    }
    assert sorted(f.stem for f in (STATIC / "pages").glob("*.js")) == sorted(routes_)
    visited = list(routes_.values())
    silent = []
    for hash_ in visited:
        before = len(requested)
        page.goto("about:blank")  # a document of its own for each: a hash change alone is
        page.goto(f"/{hash_}")  # "loaded" at once, before the page has asked for anything
        # A page that follows a live object may never be idle: then what it asked so far.
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_load_state("networkidle", timeout=5000)
        assert page.get_by_test_id("page-error").count() == 0, page.inner_text("main")
        if len(requested) == before:
            silent.append(hash_)
    assert silent == [], "each page reads the API: these asked nothing (or the check saw nothing)"
    strays = [(m, p) for m, p in requested if m not in (methods_of(p, known) or set())]
    assert strays == [], f"pages visited: {visited}"


@pytest.mark.e2e
def test_the_action_buttons_request_only_openapi_paths(
    page: Any, stack: Stack, known: dict[str, set[str]]
) -> None:
    """Clicks every action button of a job page (cancel, resume, clone) and of a sweep page
    (pause, resume, cancel): each request they make is a path and method of the document."""
    slow = {**SLOW_DIGITS, "training": {**SLOW_DIGITS["training"], "epochs": 1000}}
    grid = {"training.optimizer.learning_rate": {"values": [0.01, 0.1]}}
    with stack.client() as client:
        job = client.post("/v1/jobs", json=slow).json()["id"]
        spec = sweep_spec(base=slow, parameters=grid, max_parallel=1)
        sweep = client.post("/v1/sweeps", json=spec).json()["id"]
    posted: list[tuple[str, str]] = []

    def record(request: Any) -> None:
        path = httpx.URL(request.url).path
        if path.startswith("/v1") and request.method != "GET":
            posted.append((request.method, path))

    def status_is(testid: str, pattern: str) -> None:
        expect(page.get_by_test_id(testid)).to_have_text(re.compile(pattern), timeout=20_000)

    page.on("request", record)
    try:
        page.goto(f"/#/jobs/{job}")
        status_is("job-status", "queued|running")
        page.get_by_test_id("cancel").click()
        status_is("job-status", "cancelled")
        page.get_by_test_id("resume").click()
        status_is("job-status", "queued|running")
        page.get_by_test_id("cancel").click()
        status_is("job-status", "cancelled")
        page.get_by_test_id("clone").click()
        page.get_by_test_id("clone-overrides").fill("training.epochs=1")
        page.get_by_test_id("clone-submit").click()
        page.wait_for_url(re.compile(r"#/jobs/(?!" + job + ")"))

        page.goto("about:blank")
        page.goto(f"/#/sweeps/{sweep}")
        for action, after in (("pause", "paused"), ("resume", "running"), ("cancel", "cancel")):
            status_is("sweep-status", "paused" if action == "resume" else "running")
            page.get_by_test_id(action).click()
            status_is("sweep-status", after)
    finally:  # the other tests' jobs must not wait behind these
        with stack.client() as client:
            cancel(stack, sweep, "sweeps")
            cancel(stack, job)
            for j in client.get("/v1/jobs", params={"status": "running"}).json()["items"]:
                cancel(stack, j["id"])
    actions = ["cancel", "resume", "cancel", "clone", "pause", "resume", "cancel"]
    assert [p.rsplit("/", 1)[-1] for _, p in posted] == actions
    strays = [(m, p) for m, p in posted if m not in (methods_of(p, known) or set())]
    assert strays == []
