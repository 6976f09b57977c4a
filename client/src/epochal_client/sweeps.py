"""`SweepRun`: one sweep held by a script, so the script reads as the experiment it is:
`sweep = client.sweep("examples/sweeps/grid_lr_batch.yaml")`, then `sweep.wait()`,
`sweep.leaderboard()`, `sweep.best().params`, `sweep.trials()`, `sweep.compare(top=3)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from epochal_client.models import Comparison, Job, Leaderboard, LeaderboardEntry, Sweep

if TYPE_CHECKING:  # the client builds SweepRuns, so it imports this module
    from epochal_client.http import Client


class SweepRun:
    """A sweep and the client that reaches it. `state` is the sweep as last fetched."""

    def __init__(self, client: Client, sweep: Sweep):
        self.client = client
        self.state = sweep

    @property
    def id(self) -> str:
        return self.state.id

    def __repr__(self) -> str:
        return f"SweepRun({self.id!r}, {self.state.status!r}, trials={self.state.trials})"

    def refresh(self) -> Sweep:
        self.state = self.client.get_sweep(self.id)
        return self.state

    def wait(
        self,
        timeout: float | None = None,
        poll: float = 2.0,
        on_progress: Callable[[Sweep], None] | None = None,
    ) -> Sweep:
        """Until the sweep has finished or been cancelled; see `Client.wait_sweep`."""
        self.state = self.client.wait_sweep(
            self.id, timeout=timeout, poll=poll, on_progress=on_progress
        )
        return self.state

    def leaderboard(self, limit: int | None = None) -> Leaderboard:
        return self.client.leaderboard(self.id, limit=limit)

    def best(self) -> LeaderboardEntry | None:
        """The first-ranked trial, or None while no trial has a value of the metric."""
        trials = self.client.leaderboard(self.id, limit=1).trials
        return trials[0] if trials and trials[0].rank is not None else None

    def trials(self, status: str | None = None) -> list[Job]:
        """Every trial job of the sweep (newest first), from `GET /v1/jobs?sweep_id=`."""
        return list(self.client.iter_jobs(sweep_id=self.id, status=status, limit=200))

    def compare(self, top: int = 3) -> Comparison:
        """The `top` ranked trials side by side (`GET /v1/compare`): at least two are needed."""
        ranked = [t.job_id for t in self.leaderboard(limit=top).trials if t.rank is not None]
        if len(ranked) < 2:
            raise ValueError(
                f"sweep {self.id} has {len(ranked)} ranked trial(s); comparing needs at least 2"
            )
        return self.client.compare(ranked[:top])

    def cancel(self) -> Sweep:
        self.state = self.client.cancel_sweep(self.id)
        return self.state

    def pause(self) -> Sweep:
        self.state = self.client.pause_sweep(self.id)
        return self.state

    def resume(self) -> Sweep:
        self.state = self.client.resume_sweep(self.id)
        return self.state
