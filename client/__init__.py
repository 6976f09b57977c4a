"""A synchronous Python client of the Epochal HTTP API."""

from client.errors import EpochalAPIError, EpochalConnectionError, EpochalError
from client.http import Client, load_spec
from client.models import Comparison, Job, Page, Series

__all__ = [
    "Client",
    "Comparison",
    "EpochalAPIError",
    "EpochalConnectionError",
    "EpochalError",
    "Job",
    "Page",
    "Series",
    "load_spec",
]
