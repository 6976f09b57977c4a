"""The artifacts store in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), through obstore.

A PUT, and the completion of a multipart upload, publish the whole object at once: a reader sees
the old object or the new one, never a part. `write_from` fills a local temporary file, then
uploads it in parts of `PART_BYTES` (S3's multipart upload) read from the file as they go, so a
large model or data set never sits whole in memory.

An unreachable bucket (connection refused, timeouts, 5xx) raises `ArtifactsUnavailable` once
obstore's own quick retries are spent. With `patience` (the workers': a checkpoint or a final
model must not be lost to a short outage), each operation tries again with a growing delay until
`patience` seconds have passed.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import GenericError, JoinError
from obstore.store import S3Store

from core.artifacts.base import ArtifactsUnavailable, check_key, check_prefix

log = logging.getLogger(__name__)
T = TypeVar("T")
PART_BYTES = 8 * 1024 * 1024  # multipart above this size, in parts of this size
# A request the store refuses (4xx), but for a timeout (408) and throttling (429): retried.
_CLIENT_ERROR = re.compile(r"status code: 4(?!08|29)\d\d")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"expected an artifacts URL such as s3://bucket/prefix. Received {url!r}")
    return parts.netloc, parts.path.strip("/")


class S3Artifacts:
    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str = "",
        timeout_seconds: float = 30.0,
        patience: float = 0.0,
        staging: Path | None = None,
    ):
        """`url` is s3://bucket/prefix. Credentials and region come from the standard AWS
        variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
        AWS_DEFAULT_REGION), as obstore reads them; `endpoint_url` names a store other than AWS
        (http://minio:9000)."""
        bucket, prefix = parse_s3_url(url)
        config = {"endpoint": endpoint_url} if endpoint_url else {}
        self.url = url
        self.patience = patience
        self.staging = staging
        self._store = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options={
                "allow_http": endpoint_url.startswith("http://"),
                "connect_timeout": timedelta(seconds=min(5.0, timeout_seconds)),
                "timeout": timedelta(seconds=timeout_seconds),
            },
            # A blip is retried inside each request; an outage comes back as
            # ArtifactsUnavailable quickly, and `patience` decides what happens next.
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=timeout_seconds)},
        )

    def write(self, key: str, data: bytes) -> None:
        check_key(key)
        self._call(lambda: obstore.put(self._store, key, data), f"write {key}")

    def write_from(self, key: str, fill: Callable[[Path], None]) -> int:
        check_key(key)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="epochal-artifact-")
        os.close(fd)
        tmp = Path(name)
        try:
            fill(tmp)  # once: a retried upload sends the same file again
            size = tmp.stat().st_size

            def upload() -> None:
                obstore.put(self._store, key, tmp, chunk_size=PART_BYTES, max_concurrency=4)

            self._call(upload, f"write {key}")
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def read(self, key: str) -> bytes:
        check_key(key)
        return self._call(lambda: bytes(obstore.get(self._store, key).bytes()), f"read {key}")

    def exists(self, key: str) -> bool:
        check_key(key)

        def head() -> bool:
            try:
                obstore.head(self._store, key)
            except FileNotFoundError:
                return False
            return True

        return self._call(head, f"look up {key}")

    def delete(self, key: str) -> None:
        check_key(key)
        self._call(lambda: obstore.delete(self._store, key), f"delete {key}")

    def delete_prefix(self, prefix: str) -> None:
        """Lists the prefix and deletes what it lists, up to 1,000 keys per request."""
        check_prefix(prefix)

        def delete_all() -> None:
            keys = [meta["path"] for batch in obstore.list(self._store, prefix) for meta in batch]
            if keys:
                obstore.delete(self._store, keys)

        self._call(delete_all, f"delete {prefix}")

    def _call(self, action: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + self.patience
        delay = 0.5
        while True:
            try:
                return action()
            except (GenericError, JoinError) as e:
                if _CLIENT_ERROR.search(str(e)):
                    raise  # a request the store refuses, not an outage
                message = f"{what}: the artifacts store {self.url} is unavailable"
                if time.monotonic() + delay > deadline:
                    raise ArtifactsUnavailable(f"{message} ({_first_line(e)})") from e
                log.warning("%s; retrying in %.1fs", message, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
