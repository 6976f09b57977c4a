"""`epochal keys`, `EPOCHAL_API_KEY` in the client and CLI, and `delete`, against a real API
that requires keys (PostgreSQL + Redis; no worker: jobs stay queued)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from epochal_client import Client, EpochalError
from tests.e2e.stack import Stack, epochal_command, fresh_stack, service_env, wait_until
from tests.servers import free_port
from tests.specs import moons_mlp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keyed(
    postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict]]:
    with fresh_stack(
        "keys", postgres_server_url, redis_url, tmp_path_factory,
        auth="required", auth_cache_seconds=0.5,
    ) as (stack, settings):  # fmt: skip
        yield stack, settings


def epochal(settings: dict, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [epochal_command(), *args],
        env={**service_env(**settings), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_from_the_cli_reach_the_api_and_stop_when_revoked(keyed: tuple[Stack, dict]) -> None:
    stack, settings = keyed
    made = epochal(
        settings, "keys", "create", "--project", "team", "--role", "write", "--name", "ci"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key.split("_")[1]
    assert key.startswith("epk_") and "shown only once" in made.stderr
    listed = epochal(settings, "keys", "list")
    assert key_id in listed.stdout and "team" in listed.stdout and key not in listed.stdout

    cli = {"EPOCHAL_URL": stack.url}
    refused = epochal(settings, "list", **cli)
    assert refused.returncode == 3 and "401" in refused.stderr
    ok = epochal(settings, "list", **cli, EPOCHAL_API_KEY=key)
    assert ok.returncode == 0, ok.stderr

    with Client(stack.url, api_key=key) as client:
        job = client.submit(moons_mlp(epochs=1))
        busy = epochal(settings, "delete", job.id, **cli, EPOCHAL_API_KEY=key)
        assert busy.returncode == 3 and "409" in busy.stderr and "cancel it first" in busy.stderr
        client.cancel(job.id)
        gone = epochal(settings, "delete", job.id, **cli, EPOCHAL_API_KEY=key)
        assert gone.returncode == 0, gone.stderr
        with pytest.raises(EpochalError, match="404"):
            client.get(job.id)

    assert epochal(settings, "keys", "revoke", key_id).returncode == 0
    deadline = time.monotonic() + 5
    while epochal(settings, "list", **cli, EPOCHAL_API_KEY=key).returncode == 0:
        assert time.monotonic() < deadline, "a revoked key still works after 5 s"
        time.sleep(0.2)


def test_epochal_api_beyond_loopback_requires_keys(keyed: tuple[Stack, dict], tmp_path) -> None:
    _, settings = keyed
    port = free_port()
    open_settings = {k: v for k, v in settings.items() if k != "auth"}  # EPOCHAL_AUTH unset
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115 - closed below
    api = subprocess.Popen(
        [epochal_command(), "api", "--host", "0.0.0.0", "--port", str(port)],
        env=service_env(**open_settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60, "the API on 0.0.0.0")
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(20)
        log.close()
    assert "API keys are required on 0.0.0.0" in (tmp_path / "api.log").read_text()
