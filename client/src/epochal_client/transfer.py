"""Files to and from the API without holding them in memory: an upload's body read in chunks
as it is sent, a download written to a temporary file beside its target and renamed into place
only once it is complete."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

CHUNK_BYTES = 1 << 20
CSV_SUFFIXES = frozenset({".csv"})

Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


class FileChunks:
    """A file's bytes as an iterable of chunks for httpx's `content=`. Each iteration opens the
    file again (a generator of its own), so a retried request sends the whole file again:
    httpx refuses to send a plain generator twice."""

    def __init__(self, path: Path, on_progress: Progress | None = None):
        self.path = path
        self.size = path.stat().st_size
        self.on_progress = on_progress

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        with self.path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                sent += len(chunk)
                yield chunk
                if self.on_progress is not None:
                    self.on_progress(sent, self.size)

    def content_type(self) -> str:
        suffix = self.path.suffix.lower()
        return "text/csv" if suffix in CSV_SUFFIXES else "application/octet-stream"


def save(response: httpx.Response, dest: Path) -> Path:
    """Stream a response's body to `dest`: into a hidden `.part` file in the same folder, then
    renamed over `dest` once every byte has arrived. Whatever fails, no partial file stays."""
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with part.open("xb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def csv_body(csv: str | os.PathLike[str]) -> bytes:
    """CSV rows for a `text/csv` body: a path's bytes, or the text itself. A `str` holding a
    line break is the text; one without is a file's path."""
    if isinstance(csv, str) and ("\n" in csv or "\r" in csv):
        return csv.encode()
    return Path(csv).read_bytes()
