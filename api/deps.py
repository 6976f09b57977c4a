"""FastAPI dependencies, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from api.auth import CallerDep
from api.queue import Enqueuer
from core.artifacts import Artifacts
from core.settings import Settings
from core.store.datasets import StoreUploads
from core.store.workers import Fleet


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_sessions(request: Request) -> sessionmaker[Session]:
    """For work in several short transactions (deleting a job's points in batches)."""
    return request.app.state.sessions


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


def get_artifacts(request: Request) -> Artifacts:
    """The process's artifacts store (core.artifacts.open_artifacts, built with the app)."""
    return request.app.state.artifacts


def get_uploads(request: Request, me: CallerDep) -> StoreUploads:
    """The caller's project's uploaded data sets, for specs that name one (look-ups open
    their own sessions)."""
    state = request.app.state
    return StoreUploads(state.sessions, state.artifacts, me.project)


def get_fleet(request: Request, session: Annotated[Session, Depends(get_session)]) -> Fleet:
    """The live workers, read once per request (for the warnings of the jobs it answers)."""
    settings = request.app.state.settings
    return Fleet.read(session, within_seconds=settings.worker_live_seconds)


SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ArtifactsDep = Annotated[Artifacts, Depends(get_artifacts)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
UploadsDep = Annotated[StoreUploads, Depends(get_uploads)]
FleetDep = Annotated[Fleet, Depends(get_fleet)]
