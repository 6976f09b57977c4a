"""Where the client and the CLI look for the API without --server."""

from __future__ import annotations

import pytest

from epochal_client.transport import default_url


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"EPOCHAL_URL": "https://epochal.example"}, "https://epochal.example"),
        ({"EPOCHAL_URL": "http://a:1", "EPOCHAL_API_PORT": "8200"}, "http://a:1"),
        ({"EPOCHAL_API_PORT": "8200"}, "http://127.0.0.1:8200"),  # `EPOCHAL_API_PORT=8200 make run`
        ({"EPOCHAL_API_HOST": "0.0.0.0", "EPOCHAL_API_PORT": "9"}, "http://127.0.0.1:9"),
        ({"EPOCHAL_API_HOST": "10.0.0.5"}, "http://10.0.0.5:8000"),
        ({"EPOCHAL_API_HOST": "::1", "EPOCHAL_API_PORT": "9"}, "http://[::1]:9"),
    ],
)
def test_epochal_url_first_then_the_servers_own_host_and_port(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("EPOCHAL_URL", "EPOCHAL_API_HOST", "EPOCHAL_API_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_url() == expected
