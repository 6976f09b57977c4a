"""What the API and the workers agree on without importing each other: the task and its queues.

The API enqueues `TRAIN_TASK` by name with the job id as its only argument.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings

TRAIN_TASK = "epochal.train"
QUEUES = ("cpu", "gpu")


def queue_for(device: str, auto_queue: str) -> str:
    """`cuda` jobs go to GPU workers, `cpu` jobs to CPU workers, `auto` to the configured queue."""
    return {"cuda": "gpu", "cpu": "cpu"}.get(device, auto_queue)


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the API's client and the workers."""
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    if settings.broker_key_prefix:
        transport["global_keyprefix"] = settings.broker_key_prefix
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "cpu",
        "task_create_missing_queues": False,
        "task_ignore_result": True,
        "result_backend": None,
    }
