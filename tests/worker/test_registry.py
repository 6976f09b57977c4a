"""A worker's registration against a real store: it appears with its device once its thread
has asked a child interpreter (core.devices.probe), its heartbeat moves, and leaving deletes
it. tests/client/test_fleet_cli.py sees a real Celery worker do the same through its signals."""

from __future__ import annotations

from pathlib import Path

import torch

import migrations
from core.settings import Settings
from core.store import workers as worker_store
from core.store.db import session_factory
from tests.conftest import make_settings
from tests.e2e.stack import wait_until
from worker.registry import Registration


def live(settings: Settings) -> list:
    with session_factory(settings.database_url)() as session:
        return worker_store.live_workers(session, within_seconds=settings.worker_live_seconds)


def test_a_worker_registers_beats_and_leaves(
    empty_sqlite_url: str, redis_url: str, tmp_path: Path
) -> None:
    """SQLite only: the registry's upsert runs on both stores in tests/api/test_fleet.py, and
    the child interpreter costs seconds on a busy machine."""
    migrations.upgrade(empty_sqlite_url)
    settings = make_settings(empty_sqlite_url, redis_url, tmp_path, worker_heartbeat_seconds=0.2)
    registration = Registration(settings)
    registration.start("epochal-cpu-1@test", ["cpu", "gpu"], 3)
    try:
        [row] = wait_until(lambda: live(settings), 120, "the worker to register")
        assert (row.id, row.queues, row.concurrency) == ("epochal-cpu-1@test", ["cpu", "gpu"], 3)
        assert row.device == ("cuda" if torch.cuda.is_available() else "cpu")
        first = row.last_heartbeat
        wait_until(lambda: live(settings)[0].last_heartbeat > first, 10, "a second heartbeat")
        assert live(settings)[0].started_at == row.started_at  # a beat keeps the start
    finally:
        registration.leave()
    assert live(settings) == []
    assert registration.thread is not None and not registration.thread.is_alive()
