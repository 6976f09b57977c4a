"""/v1/datasets: the data sets a spec can name: built-ins, and uploads (add, read, delete).

An upload is the file itself as the request body (`curl --data-binary @file.csv`), streamed to a
local staging file (core.artifacts.staging_dir) while it is hashed and counted, and refused with 413
past EPOCHAL_MAX_UPLOAD_BYTES. Receiving the body, and then reading it, each have
EPOCHAL_UPLOAD_TIMEOUT_SECONDS (408 past it: the reader checks its deadline as it goes, so no
thread is left busy). The staging file is removed whatever happens (a refusal, a time limit, a
client that disconnects); see core.store.datasets for the order that leaves no half-written
data set.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.auth import CallerDep
from api.deps import ArtifactsDep, SessionDep, SettingsDep
from api.submissions import IdempotencyDep, find_replay, for_upload
from core.artifacts import staging_dir
from core.data import DATASETS
from core.data.catalog import is_upload_id
from core.data.upload_types import UploadOptions
from core.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    TimedOutError,
    TooLargeError,
    UnknownNameError,
)
from core.spec.job import DatasetSpec
from core.store import datasets as dataset_store
from core.store import idempotency
from core.store.idempotency import IN_PROGRESS, IdempotencyKey
from core.store.models import Dataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


class DatasetOut(BaseModel):
    id: str  # what a spec's dataset.name takes: the built-in's name, or the upload's id
    name: str
    source: Literal["builtin", "upload"]
    description: str
    task: str
    feature_shape: list[int]
    samples: int
    num_classes: int | None
    target_shape: list[int]
    options: list[str]
    # Uploads only.
    format: str | None = None
    target: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    columns: list[str] | None = None
    features: list[str] | None = None
    categories: dict[str, list[str]] | None = None
    classes: list[Any] | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: Dataset) -> DatasetOut:
        encoding = row.encoding
        shape = "x".join(map(str, row.feature_shape))
        return cls(
            id=row.id,
            name=row.name,
            source="upload",
            description=f"uploaded {row.format.upper()}: {row.rows} rows of {shape}",
            task=row.task,
            feature_shape=row.feature_shape,
            samples=row.rows,
            num_classes=row.num_classes,
            target_shape=row.target_shape,
            options=[],
            format=row.format,
            target=row.target or None,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            columns=encoding.get("columns") or None,
            features=encoding.get("features") or None,
            categories=encoding.get("categories") or None,
            classes=encoding.get("classes"),
            created_at=row.created_at,
        )


def describe(name: str) -> DatasetOut:
    builtin = DATASETS.get(name)
    info = builtin.info(DatasetSpec(name=name))  # with default options
    return DatasetOut(
        id=name,
        name=name,
        source="builtin",
        description=builtin.description,
        task=info.task,
        feature_shape=list(info.feature_shape),
        samples=info.samples,
        num_classes=info.num_classes,
        target_shape=list(info.target_shape),
        options=sorted(builtin.options),
    )


@router.get("", response_model=list[DatasetOut], response_model_exclude_unset=True)
def list_datasets(session: SessionDep, me: CallerDep) -> list[DatasetOut]:
    """The built-in data sets (shared by every project), then the project's uploads (newest
    first)."""
    rows = dataset_store.list_datasets(session, project=me.project)
    uploads = [DatasetOut.of(row) for row in rows]
    return [describe(name) for name in DATASETS.names()] + uploads


@router.get("/{name}", response_model=DatasetOut, response_model_exclude_unset=True)
def get_dataset(name: str, session: SessionDep, me: CallerDep) -> DatasetOut:
    if is_upload_id(name):
        row = dataset_store.get_dataset(session, dataset_id=name, project=me.project)
        return DatasetOut.of(row)
    try:
        return describe(DATASETS.canonical(name))
    except UnknownNameError as e:
        raise NotFoundError(f"{e}, or an uploaded data set's id") from e


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut,
    response_model_exclude_unset=True,
    responses={200: {"model": DatasetOut, "description": "the same file, uploaded before"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_dataset(
    request: Request,
    response: Response,
    settings: SettingsDep,
    me: CallerDep,
    idem: IdempotencyDep,
    name: Annotated[str, Query(max_length=200, description="a name to show")] = "",
    target: Annotated[
        str | None, Query(max_length=200, description="CSV, Parquet: the column to predict")
    ] = None,
    task: Annotated[
        Literal["classification", "regression"] | None,
        Query(description="default: classification for text or few integer targets"),
    ] = None,
    format: Annotated[
        Literal["csv", "npz", "parquet"] | None,
        Query(description="default: told by the file's first bytes"),
    ] = None,
) -> DatasetOut:
    """Upload a data set into the caller's project: the file is the body. `201` for a new one,
    `200` with the existing data set when the same file was already uploaded (read with the same
    target and task). `429` past the project's bytes of uploads (EPOCHAL_PROJECT_MAX_UPLOAD_BYTES).
    With an `Idempotency-Key`, a repeat answers the first response."""
    project = me.owner
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    options = UploadOptions(
        format=format,
        target=target,
        task=task,
        min_rows=settings.min_dataset_rows,
        max_categories=settings.max_categories,
        max_values=settings.max_data_values,
        max_columns=settings.max_columns,
    )
    timeout = settings.upload_timeout_seconds
    staging = staging_dir(settings)  # a local folder, whatever the store
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, prefix="upload-")
    path = Path(tmp)
    try:  # removes the staging file on every path, a client's disconnect included
        try:
            async with asyncio.timeout(timeout):
                digest, size = await _receive(request, fd, limit)
        except TimeoutError:
            raise TimedOutError(
                f"the upload was not received within {timeout:g} s "
                "(EPOCHAL_UPLOAD_TIMEOUT_SECONDS); nothing was stored"
            ) from None
        except ClientDisconnect:  # no one to answer: a problem, not a logged 500
            raise InvalidArgumentError(
                "the client disconnected before the upload ended; nothing was stored"
            ) from None
        idem = for_upload(request, me, idem, digest)
        if (answer := await run_in_threadpool(_claim, request, idem)) is not None:
            return answer
        options = replace(options, deadline=time.monotonic() + timeout, timeout=timeout)
        upload = dataset_store.Upload(
            path,
            digest,
            size,
            name,
            options,
            project=project,
            created_by=me.key_id,
            max_project_bytes=settings.project_max_upload_bytes,
        )
        try:
            row, created = await run_in_threadpool(_ingest, request, upload)
        except BaseException:
            if idem is not None:
                await run_in_threadpool(_settle, request, idem, None)
            raise
    finally:
        path.unlink(missing_ok=True)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    out = DatasetOut.of(row)
    if idem is not None:
        body = out.model_dump(mode="json", exclude_unset=True)
        await run_in_threadpool(_settle, request, idem, (code, body))
        return JSONResponse(body, status_code=code)
    response.status_code = code
    return out


def _claim(request: Request, idem: IdempotencyKey | None) -> JSONResponse | None:
    """The stored answer of a repeat; else the key is taken (`in progress`) before the file is
    read, so the same key sent at once with another file stores nothing (409, then 422)."""
    if idem is None:
        return None
    with request.app.state.sessions() as session:
        if (answer := find_replay(session, idem)) is not None:
            return answer
        try:
            idempotency.remember(session, idem, status_code=IN_PROGRESS, response={})
            session.commit()
        except IntegrityError:
            session.rollback()
            if (answer := find_replay(session, idem)) is not None:
                return answer
            raise
    return None


def _settle(
    request: Request, idem: IdempotencyKey, answer: tuple[int, dict[str, Any]] | None
) -> None:
    """Store the final answer for the taken key, or free the key (nothing was stored)."""
    with request.app.state.sessions() as session:
        if answer is None:
            idempotency.forget(session, idem)
        else:
            idempotency.complete(session, idem, response=answer[1], status_code=answer[0])
        session.commit()


async def _receive(request: Request, fd: int, limit: int) -> tuple[str, int]:
    """Stream the body into the open staging file: (its SHA-256, its size)."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest(), size


def _ingest(request: Request, upload: dataset_store.Upload) -> tuple[Dataset, bool]:
    state = request.app.state
    return dataset_store.ingest(state.sessions, state.artifacts, upload)


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(
        f"the upload is larger than {limit:,} bytes (EPOCHAL_MAX_UPLOAD_BYTES); nothing was stored"
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(
    name: str, session: SessionDep, artifacts: ArtifactsDep, me: CallerDep
) -> Response:
    """`409` while a queued or running job names the data set; built-ins cannot be deleted."""
    if not is_upload_id(name):
        if name in DATASETS:
            raise ConflictError(f"{name!r} is a built-in data set; only uploads can be deleted")
        raise NotFoundError(f"no uploaded data set with id {name!r}")
    key = dataset_store.delete_dataset(session, dataset_id=name, project=me.project)
    session.commit()
    artifacts.delete(key)  # after the commit: never a row without
    return Response(status_code=status.HTTP_204_NO_CONTENT)
