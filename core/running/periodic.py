"""A thread that calls a function every few seconds until stopped: the heartbeat and the reaper."""

from __future__ import annotations

import threading
from collections.abc import Callable

from core import logs


class Periodic:
    def __init__(self, every_seconds: float, tick: Callable[[], None], name: str):
        self.every_seconds = every_seconds
        self.tick = tick
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # A ContextThread: its lines name the job the caller runs (core.logs).
        self._thread = logs.ContextThread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.tick()
