"""A synchronous Python client of the Epochal HTTP API."""

from client.errors import EpochalAPIError, EpochalConnectionError, EpochalError
from client.http import Client, load_spec
from client.models import (
    Comparison,
    Job,
    Leaderboard,
    LeaderboardEntry,
    Page,
    Series,
    Sweep,
    SweepBest,
    SweepCounts,
    SweepMetric,
    SweepPage,
)
from client.sweeps import SweepRun

__all__ = [
    "Client",
    "Comparison",
    "EpochalAPIError",
    "EpochalConnectionError",
    "EpochalError",
    "Job",
    "Leaderboard",
    "LeaderboardEntry",
    "Page",
    "Series",
    "Sweep",
    "SweepBest",
    "SweepCounts",
    "SweepMetric",
    "SweepPage",
    "SweepRun",
    "load_spec",
]
