"""FastAPI dependencies, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.queue import Enqueuer
from core.settings import Settings
from core.store.artifacts import FolderArtifacts
from core.store.datasets import StoreUploads


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


def get_uploads(request: Request) -> StoreUploads:
    """The uploaded data sets, for specs that name one (look-ups open their own sessions)."""
    state = request.app.state
    return StoreUploads(state.sessions, FolderArtifacts(state.settings.artifacts_dir))


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
UploadsDep = Annotated[StoreUploads, Depends(get_uploads)]
