"""`Client`: the v1 API; the calls of jobs are here, those of data sets and models in
`data_api`, of sweeps and the fleet in `sweeps_api`, the connection and retries in `transport`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from epochal_client import sse
from epochal_client.data_api import DataAPI
from epochal_client.errors import EpochalConnectionError
from epochal_client.keras_import import KerasImportAPI
from epochal_client.models import Comparison, Event, Job, Page, Series
from epochal_client.overrides import with_values
from epochal_client.specs import load_spec
from epochal_client.sweeps_api import SweepsAPI
from epochal_client.transport import RETRY_STATUSES, api_error, poll_until


class Client(DataAPI, SweepsAPI, KerasImportAPI):
    """The v1 API: jobs here; data sets and models (`DataAPI`), sweeps and the fleet
    (`SweepsAPI`), specs from Keras models (`KerasImportAPI`); the connection, retries and
    errors (`Transport`)."""

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
                        raise api_error(r)
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

    def compare(self, ids: Sequence[str], x: str | None = None) -> Comparison:
        """The jobs side by side; their series aligned by `x`: "epoch" (the API's default) or
        "step"."""
        query = {"ids": ",".join(ids)} if x is None else {"ids": ",".join(ids), "x": x}
        body = self._request("GET", "/v1/compare", params=query)
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
        return poll_until(lambda: self.get(job_id), f"job {job_id}", timeout, poll, on_progress)
