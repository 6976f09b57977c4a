"""The artifacts store in a local folder: the default (`make run`), one machine."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.artifacts.base import check_key, check_prefix


class FolderArtifacts:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
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
        shutil.rmtree(self._path(check_prefix(prefix)), ignore_errors=True)
