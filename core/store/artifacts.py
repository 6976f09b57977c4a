"""The artifacts store: files addressed by key. A folder by default; the interface is what an
S3-compatible bucket would implement for deployments with many machines."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol


class Artifacts(Protocol):
    def write(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


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

    def delete(self, key: str) -> None:
        """Remove a file; a missing one is not an error."""
        self._path(key).unlink(missing_ok=True)
