"""The artifacts store: files addressed by key. A folder by default; the interface is what an
S3-compatible bucket would implement for deployments with many machines (put, get, head,
delete object: nothing a bucket lacks, such as renames or directory listings)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


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


class FolderArtifacts:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def write(self, key: str, data: bytes) -> None:
        self.write_from(key, lambda path: path.write_bytes(data))

    def write_from(self, key: str, fill: Callable[[Path], None]) -> int:
        """Atomic: a reader sees the old file or the whole new one, never a part. The file is
        filled beside its final place, synced to disk, then renamed over it."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        tmp = Path(name)
        try:
            fill(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
                size = os.fstat(f.fileno()).st_size
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        if not prefix.endswith("/") or prefix.strip("/") == "":
            raise ValueError(
                f"expected a folder-like prefix such as 'jobs/<id>/'. Received {prefix!r}"
            )
        shutil.rmtree(self._path(prefix), ignore_errors=True)
