"""`Transport`: one httpx client to the API, with retries (which: see RETRY_STATUSES), and what
the client's calls share (the default address and key, problem details, polling)."""

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
# What is retried (with backoff, `retries` times):
# - a failure to connect, for every request: it never reached the server;
# - a GET or DELETE (safe to send again), or a POST sent with an Idempotency-Key (the server
#   answers its repeats with the first answer): any transport failure (a read timeout, a
#   dropped connection) and a 502, 503 or 504;
# - any other POST: a 503 only, which the API answers when nothing was stored (api/problems.py:
#   a busy or unreachable dependency, back-pressure). A proxy's 502 or 504 may come after the
#   API acted, so such a POST is not sent twice.
RETRY_STATUSES = frozenset({502, 503, 504})  # also: the statuses that mean unreachable
UNSAFE_RETRY_STATUSES = frozenset({503})
# Failures before anything was sent: no connection, or none free in the pool.
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NOT_SENT = (*CONNECT_ERRORS, httpx.UnsupportedProtocol, httpx.LocalProtocolError)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
MAYBE_APPLIED = "the request was sent and may have been applied: check before sending it again"
# A repeat of an Idempotency-Key whose first request is still being served (an upload being
# read after the client timed out) is answered 409 with this type: the client sends it again,
# waiting a little longer each time, until the stored answer comes back; for at most the time
# after which the server counts the first request as abandoned and frees the key.
IN_PROGRESS_TYPE = "urn:epochal:problem:request_in_progress"
IN_PROGRESS_PATIENCE = 15 * 60.0
IN_PROGRESS_MAX_WAIT = 10.0

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
        if not self.base_url.lower().startswith(("http://", "https://")):
            raise ValueError(
                f"the API's URL (--server or EPOCHAL_URL) must start with http:// or https://; "
                f"received {self.base_url!r}"
            )
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
        timeout, a dropped connection) without ever creating two. Every failure of httpx ends
        as EpochalConnectionError; an error answer as EpochalAPIError."""
        headers = dict(kwargs.pop("headers", {}))
        if method in BODY_METHODS and not BODY_ARGS.intersection(kwargs):
            # The API refuses a POST without a Content-Type (a web page could send one).
            headers.setdefault("Content-Type", "application/json")
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        safe = idempotent or method.upper() in SAFE_METHODS
        retry_errors: tuple[type[httpx.HTTPError], ...] = (
            (httpx.TransportError,) if safe else CONNECT_ERRORS
        )
        retry_statuses = RETRY_STATUSES if safe else UNSAFE_RETRY_STATUSES
        kwargs["headers"] = headers
        attempt = pending = 0
        patient_until = time.monotonic() + IN_PROGRESS_PATIENCE
        while True:
            wait = min(self.backoff * 2**attempt, 5.0)
            try:
                r = self._http.request(method, path, **kwargs)
            except httpx.UnsupportedProtocol as e:  # no retry mends the URL
                raise self._unreachable(e) from e
            except retry_errors as e:
                if attempt >= self.retries:
                    raise self._unreachable(e) from e
            except httpx.HTTPError as e:
                applied = not safe and not isinstance(e, NOT_SENT)
                raise self._unreachable(e, maybe_applied=applied) from e
            else:
                if idempotent and _in_progress(r) and time.monotonic() < patient_until:
                    time.sleep(min(self.backoff * 2**pending, IN_PROGRESS_MAX_WAIT))
                    pending += 1  # not a failure: does not use up the retries
                    continue
                if r.status_code not in retry_statuses or attempt >= self.retries:
                    break
                wait = max(wait, _retry_after(r))
            time.sleep(wait)
            attempt += 1
        if r.is_error:
            error = api_error(r)
            if not safe and r.status_code in RETRY_STATUSES - UNSAFE_RETRY_STATUSES:
                error.detail = f"{error.detail} ({MAYBE_APPLIED})".lstrip()  # a proxy's answer
            raise error
        return None if r.status_code == 204 else r.json()

    def _unreachable(self, e: Exception, maybe_applied: bool = False) -> EpochalConnectionError:
        why = str(e) or type(e).__name__
        message = f"cannot reach the Epochal API at {self.base_url}: {why}"
        return EpochalConnectionError(f"{message} ({MAYBE_APPLIED})" if maybe_applied else message)

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
                    raise self._unreachable(e) from e
            except httpx.HTTPError as e:  # e.g. too many redirects
                raise self._unreachable(e) from e
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


def _in_progress(r: httpx.Response) -> bool:
    if r.status_code != 409:
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == IN_PROGRESS_TYPE


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
