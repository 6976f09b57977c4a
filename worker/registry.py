"""The worker's entry in the fleet: registers at start, beats from a thread, leaves on shutdown.

Once the worker is ready, a thread asks a child interpreter which device this machine has
(core.devices.probe: the main process must not touch CUDA before it forks its pool), then
writes the worker's row every EPOCHAL_WORKER_HEARTBEAT_SECONDS (core.store.workers.beat). A
beat that fails (the store is down) is logged and tried again at the next one. A clean
shutdown stops the thread and deletes the row; a killed worker stops beating and drops out of
the live fleet after EPOCHAL_WORKER_LIVE_BEATS heartbeats.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from importlib import metadata

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from core import devices
from core.settings import Settings
from core.store import workers as worker_store
from core.store.db import session_factory
from core.store.workers import WorkerInfo

log = logging.getLogger(__name__)
PRUNE_EVERY = 100  # beats between prunings of long-dead workers' rows


def version() -> str:
    try:
        return metadata.version("epochal")
    except metadata.PackageNotFoundError:
        return ""


def describe(node: str, queues: list[str], concurrency: int) -> WorkerInfo:
    device = devices.probe()
    return WorkerInfo(
        id=node,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        concurrency=concurrency,
        device=device.device,
        gpu_name=device.gpu_name,
        gpu_memory_bytes=device.gpu_memory_bytes,
        gpu_count=device.gpu_count,
        version=version(),
    )


class Registration:
    """The beat thread of one worker."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.node: str | None = None

    def start(self, node: str, queues: list[str], concurrency: int) -> None:
        self.node = node
        self.thread = threading.Thread(
            target=self._loop,
            args=(node, queues, concurrency),
            name="epochal-registry",
            daemon=True,
        )
        self.thread.start()

    def _loop(self, node: str, queues: list[str], concurrency: int) -> None:
        info = describe(node, queues, concurrency)
        sessions = session_factory(self.settings.database_url)
        beats = 0
        while not self.stop.is_set():
            try:
                with sessions.begin() as session:
                    worker_store.beat(session, info=info)
                    if beats % PRUNE_EVERY == 0:
                        worker_store.prune(session)
            except Exception:
                log.warning("worker %s: heartbeat failed", node, exc_info=True)
            beats += 1
            self.stop.wait(self.settings.worker_heartbeat_seconds)

    def leave(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.node is None:
            return
        try:
            with session_factory(self.settings.database_url).begin() as session:
                worker_store.forget(session, worker_id=self.node)
        except Exception:
            log.warning("worker %s: could not leave the registry", self.node, exc_info=True)


def install(app: Celery, settings: Settings) -> Registration:
    registration = Registration(settings)

    @worker_ready.connect(weak=False)
    def start(sender: object, **_: object) -> None:
        if getattr(sender, "app", None) is not app:
            return
        queues = sorted(app.amqp.queues.consume_from or app.amqp.queues)
        controller = getattr(sender, "controller", None)
        registration.start(
            str(getattr(sender, "hostname", "") or socket.gethostname()),
            queues,
            int(getattr(controller, "concurrency", None) or 1),
        )

    @worker_shutdown.connect(weak=False)
    def leave(sender: object = None, **_: object) -> None:
        registration.leave()

    return registration
