"""The artifacts store: models, checkpoints, exports and uploaded data sets, addressed by key.

`open_artifacts(settings)` is the one place that chooses it, from EPOCHAL_ARTIFACTS_URL: unset,
a folder (EPOCHAL_ARTIFACTS_DIR, one machine); `s3://bucket/prefix`, an S3-compatible bucket that
API and workers on any number of machines share. Build it once per process (the API keeps it in
its state, a Runner holds its own) and pass it on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.artifacts.base import Artifacts, ArtifactsUnavailable, check_key, check_prefix
from core.artifacts.folder import FolderArtifacts
from core.artifacts.s3 import S3Artifacts
from core.settings import Settings

__all__ = [
    "Artifacts",
    "ArtifactsUnavailable",
    "FolderArtifacts",
    "S3Artifacts",
    "check_key",
    "check_prefix",
    "open_artifacts",
    "staging_dir",
]


def open_artifacts(settings: Settings, *, patience: float = 0.0) -> Artifacts:
    """The configured store. `patience`: seconds an S3 operation keeps trying through an
    outage before ArtifactsUnavailable (a worker's writes wait; an API request does not)."""
    if not settings.artifacts_url:
        return FolderArtifacts(settings.artifacts_dir)
    return S3Artifacts(
        settings.artifacts_url,
        endpoint_url=settings.s3_endpoint_url,
        timeout_seconds=settings.artifacts_timeout_seconds,
        patience=patience,
    )


def staging_dir(settings: Settings) -> Path:
    """A local folder for files on their way into the store (an upload being received): inside
    the artifacts folder, or the machine's temporary folder when the store is a bucket."""
    if not settings.artifacts_url:
        return Path(settings.artifacts_dir) / ".uploads"
    return Path(tempfile.gettempdir()) / "epochal-uploads"
