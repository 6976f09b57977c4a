"""What every artifacts store implements: files addressed by key (`jobs/<id>/attempt-1/...`),
with nothing a bucket lacks (put, get, head, delete, list a prefix; no renames)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class ArtifactsUnavailable(ConnectionError):
    """The store cannot be reached right now (a bucket that is down, a timeout): worth trying
    again later, unlike a missing key or a refused credential."""


class Artifacts(Protocol):
    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically (a reader never sees a part)."""

    def write_from(self, key: str, fill: Callable[[Path], None]) -> int:
        """Store what `fill` writes into a local file at the path it is given, atomically, and
        return its size: a large file streams to disk without its bytes in memory (a bucket
        uploads the file)."""

    def read(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when there are none."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is not there (as an S3 DeleteObject)."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every key under `prefix` (`jobs/<id>/`: a job's files), as a bucket does by
        listing the prefix and deleting what it lists."""


def check_key(key: str) -> str:
    """A key is relative and names no parent: `a/b.bin`, never `/a`, `../a` or `a//b`."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"artifact key escapes the store: {key!r}")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise ValueError(f"artifact key escapes the store: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    if not prefix.endswith("/") or prefix.strip("/") == "":
        raise ValueError(f"expected a folder-like prefix such as 'jobs/<id>/'. Received {prefix!r}")
    check_key(prefix)
    return prefix
