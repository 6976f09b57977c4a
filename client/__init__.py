"""A synchronous Python client of the Epochal HTTP API."""

from client.errors import EpochalAPIError, EpochalConnectionError, EpochalError
from client.http import Client, load_spec
from client.models import (
    Comparison,
    Job,
    JobWarning,
    Leaderboard,
    LeaderboardEntry,
    Page,
    Queue,
    Series,
    Sweep,
    SweepBest,
    SweepCounts,
    SweepMetric,
    SweepPage,
    Worker,
)
from client.sweeps import SweepRun

__all__ = [
    "Client",
    "Comparison",
    "EpochalAPIError",
    "EpochalConnectionError",
    "EpochalError",
    "Job",
    "JobWarning",
    "Leaderboard",
    "LeaderboardEntry",
    "Page",
    "Queue",
    "Series",
    "Sweep",
    "SweepBest",
    "SweepCounts",
    "SweepMetric",
    "SweepPage",
    "SweepRun",
    "Worker",
    "load_spec",
]
