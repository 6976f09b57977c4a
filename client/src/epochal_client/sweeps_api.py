"""The calls of sweeps and of the fleet (workers, queues)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from epochal_client.models import Leaderboard, Queue, Sweep, SweepPage, Worker
from epochal_client.specs import load_spec
from epochal_client.sweeps import SweepRun
from epochal_client.transport import Transport, poll_until


class SweepsAPI(Transport):
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

    def iter_sweeps(self, status: str | None = None, limit: int = 50) -> Iterator[Sweep]:
        """Every sweep (of `status`), newest first, page after page."""
        cursor = None
        while True:
            page = self.list_sweeps(status=status, limit=limit, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

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
        return poll_until(
            lambda: self.get_sweep(sweep_id), f"sweep {sweep_id}", timeout, poll, on_progress
        )

    def sweep(self, spec: Mapping[str, Any] | str | os.PathLike[str]) -> SweepRun:
        """Start a sweep and hold it for a script: `.wait()`, `.leaderboard()`, `.best()`,
        `.trials()`, `.compare()`."""
        return SweepRun(self, self.create_sweep(spec))

    def open_sweep(self, sweep_id: str) -> SweepRun:
        """A `SweepRun` for a sweep that already exists."""
        return SweepRun(self, self.get_sweep(sweep_id))
