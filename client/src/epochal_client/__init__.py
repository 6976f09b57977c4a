"""A synchronous Python client of the Epochal HTTP API."""

from epochal_client.errors import EpochalAPIError, EpochalConnectionError, EpochalError
from epochal_client.http import Client
from epochal_client.models import (
    Comparison,
    Dataset,
    Evaluation,
    Event,
    Job,
    JobWarning,
    Leaderboard,
    LeaderboardEntry,
    Page,
    Prediction,
    Pruning,
    Queue,
    Series,
    Sweep,
    SweepBest,
    SweepCounts,
    SweepMetric,
    SweepPage,
    Worker,
)
from epochal_client.specs import load_spec
from epochal_client.sweeps import SweepRun

__all__ = [
    "Client",
    "Comparison",
    "Dataset",
    "EpochalAPIError",
    "EpochalConnectionError",
    "EpochalError",
    "Evaluation",
    "Event",
    "Job",
    "JobWarning",
    "Leaderboard",
    "LeaderboardEntry",
    "Page",
    "Prediction",
    "Pruning",
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
