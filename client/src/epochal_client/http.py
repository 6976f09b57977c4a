"""`Client`: the v1 API over httpx, with retries on connection errors and 502/503/504."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from epochal_client import sse
from epochal_client.errors import EpochalAPIError, EpochalConnectionError
from epochal_client.models import (
    Comparison,
    Dataset,
    Evaluation,
    Event,
    Job,
    Leaderboard,
    Page,
    Queue,
    Series,
    Sweep,
    SweepPage,
    Worker,
)
from epochal_client.overrides import with_values
from epochal_client.sweeps import SweepRun
from epochal_client.transfer import FileChunks, Progress, csv_body, save

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


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A job or sweep spec from a .yaml/.yml or .json file."""
    p = Path(path)
    text = p.read_text()
    if p.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(text)
    elif p.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"{p}: expected a .yaml, .yml or .json file; received {p.suffix!r}")
    if not isinstance(data, dict):
        raise ValueError(
            f"{p}: expected a mapping at the top level; received {type(data).__name__}"
        )
    return data


class Client:
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

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------

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
            raise _api_error(r)
        return None if r.status_code == 204 else r.json()

    # --- jobs ---------------------------------------------------------------------------

    def submit(
        self,
        spec: Mapping[str, Any] | str | os.PathLike[str],
        overrides: Mapping[str, Any] | None = None,
    ) -> Job:
        """Submit a spec (a mapping, or the path of a .yaml/.json file); the queued job.
        `overrides` sets values by path first: {"training.epochs": 5, "model.layers.0.units":
        64} (ValueError naming a path that does not fit the spec)."""
        body = dict(spec) if isinstance(spec, Mapping) else load_spec(spec)
        if overrides:
            body = with_values(body, overrides)
        return Job.model_validate(self._request("POST", "/v1/jobs", json=body, idempotent=True))

    def delete(self, job_id: str) -> None:
        """Delete an ended job with its metrics and files (409 while it is queued or running)."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def get(self, job_id: str) -> Job:
        return Job.model_validate(self._request("GET", f"/v1/jobs/{job_id}"))

    def list(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        params: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        order: str | None = None,
        sweep_id: str | None = None,
    ) -> Page:
        """One page of jobs. `params` filters on spec values: {"training.optimizer.type": "adam"}
        becomes param.training.optimizer.type="adam" (values are sent as JSON); `sweep_id`
        keeps a sweep's trials."""
        query: list[tuple[str, str | int]] = [("limit", limit)]
        for key, value in (
            ("status", status),
            ("tag", tag),
            ("sweep_id", sweep_id),
            ("cursor", cursor),
            ("order_by", order_by),
            ("order", order),
        ):
            if value is not None:
                query.append((key, value))
        for path, value in (params or {}).items():
            query.append((f"param.{path}", json.dumps(value)))
        return Page.model_validate(self._request("GET", "/v1/jobs", params=query))

    def iter_jobs(self, **kwargs: Any) -> Iterator[Job]:
        """Every job matching the `list` arguments, page after page."""
        kwargs.pop("cursor", None)
        cursor = None
        while True:
            page = self.list(cursor=cursor, **kwargs)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._request("POST", f"/v1/jobs/{job_id}/cancel"))

    def resume(self, job_id: str) -> Job:
        """A cancelled or failed job back to the queue, to continue from its last checkpoint
        (409 for a job in another state, or a sweep's trial)."""
        return Job.model_validate(self._request("POST", f"/v1/jobs/{job_id}/resume"))

    def clone(
        self,
        job_id: str,
        overrides: Mapping[str, Any] | None = None,
        init_from: str | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Job:
        """A new job from `job_id`'s spec with `overrides` set by path ({"training.epochs": 5}).
        `init_from` ("final", "best" or "last") starts it from the source's weights with a
        fresh optimizer; a 409 when the source has no such weights."""
        body: dict[str, Any] = {"overrides": dict(overrides or {})}
        if init_from is not None:
            body["init_from"] = init_from
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        path = f"/v1/jobs/{job_id}/clone"
        return Job.model_validate(self._request("POST", path, json=body, idempotent=True))

    def events(
        self, job_id: str, interval: float | None = None, last_event_id: str | None = None
    ) -> Iterator[Event]:
        """The job's live events until it ends: `progress`, `metrics` (the new points) and
        finally `end` (the final job), after which the iteration stops. A dropped connection
        is reopened with `Last-Event-ID`, so no point comes twice or goes missing; after
        `retries` failures in a row, EpochalConnectionError. `interval`: the server's seconds
        between polls of the store (0.1 to 10; default 1)."""
        path = f"/v1/jobs/{job_id}/events"
        params = {} if interval is None else {"interval": interval}
        failures = 0
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            try:
                with self._http.stream("GET", path, params=params, headers=headers) as r:
                    if r.status_code in RETRY_STATUSES and failures < self.retries:
                        why = f"{r.status_code} {r.reason_phrase}"
                    elif r.is_error:
                        r.read()
                        raise _api_error(r)
                    else:
                        for event in sse.parse(r.iter_lines()):
                            failures = 0
                            last_event_id = event.id or last_event_id
                            yield event
                            if event.event == "end":
                                return
                        why = "the stream closed before the job ended"
            except httpx.TransportError as e:
                why = str(e) or type(e).__name__
            failures += 1
            if failures > self.retries:
                raise EpochalConnectionError(
                    f"cannot reach the Epochal API at {self.base_url} for the events of "
                    f"job {job_id}: {why}"
                )
            time.sleep(min(self.backoff * 2 ** (failures - 1), 5.0))

    def metrics(
        self,
        job_id: str,
        names: Sequence[str] | None = None,
        since_step: int | None = None,
        max_points: int | None = None,
    ) -> list[Series]:
        query: dict[str, str | int] = {}
        if names:
            query["names"] = ",".join(names)
        if since_step is not None:
            query["since_step"] = since_step
        if max_points is not None:
            query["max_points"] = max_points
        body = self._request("GET", f"/v1/jobs/{job_id}/metrics", params=query)
        return [Series.model_validate(s) for s in body["series"]]

    def compare(self, ids: Sequence[str]) -> Comparison:
        body = self._request("GET", "/v1/compare", params={"ids": ",".join(ids)})
        return Comparison.model_validate(body)

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        poll: float = 1.0,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job has succeeded, failed, been cancelled or pruned; `on_progress`
        sees each poll's job. Raises TimeoutError after `timeout` seconds."""
        return _poll(lambda: self.get(job_id), f"job {job_id}", timeout, poll, on_progress)

    # --- data sets and models -----------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        """The built-in data sets, then the project's uploads (newest first)."""
        return [Dataset.model_validate(d) for d in self._request("GET", "/v1/datasets")]

    def dataset(self, name: str) -> Dataset:
        """A built-in data set by its name, or an upload by its id."""
        return Dataset.model_validate(self._request("GET", f"/v1/datasets/{name}"))

    def delete_dataset(self, name: str) -> None:
        """Delete an upload (409 while a queued or running job names it)."""
        self._request("DELETE", f"/v1/datasets/{name}")

    def upload_dataset(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        target: str | None = None,
        task: str | None = None,
        format: str | None = None,
        on_progress: Progress | None = None,
    ) -> Dataset:
        """Upload a CSV, NPZ or Parquet file (streamed in chunks, never read whole) into the
        project. `name` defaults to the file's stem; `target` names a table's column to predict;
        `task` is classification or regression; `format` (csv, npz, parquet) overrides what the
        file's first bytes tell. `on_progress(sent, total)` sees the bytes as they go. Sent with
        an Idempotency-Key, so a retry after a dropped connection never stores two."""
        chunks = FileChunks(Path(path), on_progress)
        query = {"name": chunks.path.stem if name is None else name}
        for key, value in (("target", target), ("task", task), ("format", format)):
            if value is not None:
                query[key] = value
        headers = {"Content-Type": chunks.content_type(), "Content-Length": str(chunks.size)}
        body = self._request(
            "POST", "/v1/datasets", params=query, content=chunks, headers=headers, idempotent=True
        )
        return Dataset.model_validate(body)

    def download_model(
        self,
        job_id: str,
        path: str | os.PathLike[str],
        format: str = "safetensors",
        checkpoint: str | None = None,
    ) -> Path:
        """Save a succeeded job's model at `path`: its weights (`safetensors`), or an `onnx` or
        `torchscript` export; `checkpoint="best"|"last"` saves that checkpoint's weights instead
        (safetensors only). Streamed to a temporary file beside `path` and renamed when
        complete: after an API error nothing is left at `path`. Returns the path."""
        query = {"format": format}
        if checkpoint is not None:
            query["checkpoint"] = checkpoint
        return self._download(f"/v1/jobs/{job_id}/model", query, Path(path))

    def predict(
        self,
        job_id: str,
        inputs: Sequence[Any] | None = None,
        records: Sequence[Mapping[str, Any]] | None = None,
        csv: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The job's outputs for one of: `inputs` (encoded vectors or arrays, numpy included),
        `records` (a table's rows as {column: value}) or `csv` (rows under the training header:
        the text, or a file's path, sent as text/csv). Per input: {"label", "probabilities"}
        (and "class" for a labelled upload) for a classifier, {"value"} for a regression."""
        if sum(x is not None for x in (inputs, records, csv)) != 1:
            raise ValueError("predict: expected exactly one of inputs, records or csv")
        url = f"/v1/jobs/{job_id}/predict"
        if csv is not None:
            headers = {"Content-Type": "text/csv"}
            body = self._request("POST", url, content=csv_body(csv), headers=headers)
        elif records is not None:
            body = self._request("POST", url, json={"records": [dict(r) for r in records]})
        else:
            rows = inputs.tolist() if hasattr(inputs, "tolist") else list(inputs or [])
            body = self._request("POST", url, json={"inputs": rows})
        return body["outputs"]

    def evaluate(self, job_id: str, dataset: str) -> Evaluation:
        """A succeeded job's loss and metrics on a data set (a built-in name or an upload id)."""
        body = self._request("POST", f"/v1/jobs/{job_id}/evaluate", json={"dataset": dataset})
        return Evaluation.model_validate(body)

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
                            raise _api_error(r)
                        return save(r, dest)
                    wait = max(wait, _retry_after(r))
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise EpochalConnectionError(
                        f"cannot reach the Epochal API at {self.base_url}: {e}"
                    ) from e
            time.sleep(wait)
            attempt += 1

    # --- the fleet ----------------------------------------------------------------------

    def workers(self) -> list[Worker]:
        """The live workers: queues, device, concurrency, running jobs, last heartbeat."""
        return [Worker.model_validate(w) for w in self._request("GET", "/v1/workers")]

    def queues(self) -> list[Queue]:
        """Each queue's depth, oldest waiting job and live workers."""
        return [Queue.model_validate(q) for q in self._request("GET", "/v1/queues")]

    # --- sweeps -------------------------------------------------------------------------

    def create_sweep(self, spec: Mapping[str, Any] | str | os.PathLike[str]) -> Sweep:
        """Start a sweep from a SweepSpec (a mapping, or the path of a .yaml/.json file).
        Every trial is validated first: a bad one raises a 422 naming the parameter path."""
        body = dict(spec) if isinstance(spec, Mapping) else load_spec(spec)
        return Sweep.model_validate(self._request("POST", "/v1/sweeps", json=body, idempotent=True))

    def delete_sweep(self, sweep_id: str) -> None:
        """Delete an ended sweep with all its trials."""
        self._request("DELETE", f"/v1/sweeps/{sweep_id}")

    def get_sweep(self, sweep_id: str) -> Sweep:
        return Sweep.model_validate(self._request("GET", f"/v1/sweeps/{sweep_id}"))

    def list_sweeps(
        self, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> SweepPage:
        query: dict[str, str | int] = {"limit": limit}
        if status is not None:
            query["status"] = status
        if cursor is not None:
            query["cursor"] = cursor
        return SweepPage.model_validate(self._request("GET", "/v1/sweeps", params=query))

    def leaderboard(self, sweep_id: str, limit: int | None = None) -> Leaderboard:
        """The trials ranked by their best value of the sweep's metric; those without one last."""
        query = {} if limit is None else {"limit": limit}
        body = self._request("GET", f"/v1/sweeps/{sweep_id}/leaderboard", params=query)
        return Leaderboard.model_validate(body)

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        return self._sweep_action(sweep_id, "cancel")

    def pause_sweep(self, sweep_id: str) -> Sweep:
        """No new trials until `resume_sweep`."""
        return self._sweep_action(sweep_id, "pause")

    def resume_sweep(self, sweep_id: str) -> Sweep:
        return self._sweep_action(sweep_id, "resume")

    def _sweep_action(self, sweep_id: str, action: str) -> Sweep:
        return Sweep.model_validate(self._request("POST", f"/v1/sweeps/{sweep_id}/{action}"))

    def wait_sweep(
        self,
        sweep_id: str,
        timeout: float | None = None,
        poll: float = 2.0,
        on_progress: Callable[[Sweep], None] | None = None,
    ) -> Sweep:
        """Poll until the sweep has finished or been cancelled (a paused sweep is waited on);
        `on_progress` sees each poll's sweep. Raises TimeoutError after `timeout` seconds."""
        return _poll(
            lambda: self.get_sweep(sweep_id), f"sweep {sweep_id}", timeout, poll, on_progress
        )

    def sweep(self, spec: Mapping[str, Any] | str | os.PathLike[str]) -> SweepRun:
        """Start a sweep and hold it for a script: `.wait()`, `.leaderboard()`, `.best()`,
        `.trials()`, `.compare()`."""
        return SweepRun(self, self.create_sweep(spec))

    def open_sweep(self, sweep_id: str) -> SweepRun:
        """A `SweepRun` for a sweep that already exists."""
        return SweepRun(self, self.get_sweep(sweep_id))


def _poll(
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


def _api_error(r: httpx.Response) -> EpochalAPIError:
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
