"""The artifacts store: files addressed by key. A folder by default; the interface is what an
S3-compatible bucket would implement for deployments with many machines (put, get, head,
delete object: nothing a bucket lacks, such as renames or directory listings)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol


class Artifacts(Protocol):
    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically (a reader never sees a part)."""

    def read(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when there are none."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is not there (as an S3 DeleteObject)."""


class FolderArtifacts:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def write(self, key: str, data: bytes) -> None:
        """Atomic: a reader sees the old file or the whole new one, never a part."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
