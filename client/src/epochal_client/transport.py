"""`Transport`: one httpx client to the API, with retries on connection errors and 502/503/504,
and what the client's calls share (the default address and key, problem details, polling)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from epochal_client.errors import EpochalAPIError, EpochalConnectionError
from epochal_client.models import Job, Sweep
from epochal_client.transfer import save

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({502, 503, 504})
# Only failures to connect are retried: the request never reached the server, so even a
# POST is safe to send again. (A POST sent with an Idempotency-Key is retried on any failure.)
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_ARGS = frozenset({"json", "content", "data", "files"})

T = TypeVar("T", Job, Sweep)


def default_url() -> str:
    """EPOCHAL_URL; else the address the server's own settings name (EPOCHAL_API_HOST and
    EPOCHAL_API_PORT, a wildcard host reached on loopback), so that the environment that
    started `make run` also reaches it; else http://127.0.0.1:8000."""
    if url := os.environ.get("EPOCHAL_URL"):
        return url
    host = os.environ.get("EPOCHAL_API_HOST", "").strip()
    port = os.environ.get("EPOCHAL_API_PORT", "").strip()
    if not host and not port:
        return DEFAULT_URL
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port or 8000}"


def default_api_key() -> str | None:
    return os.environ.get("EPOCHAL_API_KEY") or None


class Transport:
    """The base of `Client`: its connection, `_request` and `_download`."""

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 30,
        retries: int = 3,
        backoff: float = 0.2,
        api_key: str | None = None,
    ):
        """`api_key` (default EPOCHAL_API_KEY) is sent as `Authorization: Bearer <key>`."""
        self.base_url = (base_url or default_url()).rstrip("/")
        self.retries = retries
        self.backoff = backoff
        key = api_key or default_api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any) -> Any:
        """`idempotent`: a POST that creates something is sent with a fresh `Idempotency-Key`,
        the same for each retry, so it may be retried whatever happened to the first try (a
        timeout, a dropped connection) without ever creating two."""
        headers = dict(kwargs.pop("headers", {}))
        if method in BODY_METHODS and not BODY_ARGS.intersection(kwargs):
            # The API refuses a POST without a Content-Type (a web page could send one).
            headers.setdefault("Content-Type", "application/json")
        retry_errors: tuple[type[Exception], ...] = RETRY_ERRORS
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
            retry_errors = (httpx.TransportError,)
        kwargs["headers"] = headers
        attempt = 0
        while True:
            wait = min(self.backoff * 2**attempt, 5.0)
            try:
                r = self._http.request(method, path, **kwargs)
            except retry_errors as e:
                if attempt >= self.retries:
                    raise EpochalConnectionError(
                        f"cannot reach the Epochal API at {self.base_url}: {e}"
                    ) from e
            else:
                if r.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    break
                wait = max(wait, _retry_after(r))
            time.sleep(wait)
            attempt += 1
        if r.is_error:
            raise api_error(r)
        return None if r.status_code == 204 else r.json()

    def _download(self, path: str, query: Mapping[str, str], dest: Path) -> Path:
        """GET `path` streamed into `dest`; retried as `_request` retries (a GET is safe to
        send again whatever failed)."""
        attempt = 0
        while True:
            wait = min(self.backoff * 2**attempt, 5.0)
            try:
                with self._http.stream("GET", path, params=query) as r:
                    if r.status_code not in RETRY_STATUSES or attempt >= self.retries:
                        if r.is_error:
                            r.read()
                            raise api_error(r)
                        return save(r, dest)
                    wait = max(wait, _retry_after(r))
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise EpochalConnectionError(
                        f"cannot reach the Epochal API at {self.base_url}: {e}"
                    ) from e
            time.sleep(wait)
            attempt += 1


def poll_until(
    fetch: Callable[[], T],
    what: str,
    timeout: float | None,
    poll: float,
    on_progress: Callable[[T], None] | None,
) -> T:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        item = fetch()
        if on_progress is not None:
            on_progress(item)
        if item.finished:
            return item
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{what} is still {item.status} after {timeout}s")
        time.sleep(poll)


def _retry_after(r: httpx.Response) -> float:
    """The server's `Retry-After` in seconds (capped at 30), or 0."""
    value = r.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else 0.0


def api_error(r: httpx.Response) -> EpochalAPIError:
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return EpochalAPIError(r.status_code, r.reason_phrase, r.text[:500].strip())
    return EpochalAPIError(
        body.get("status", r.status_code),
        body.get("title", r.reason_phrase),
        body.get("detail", ""),
        body.get("errors"),
        body.get("type"),
    )
