"""Uploaded data sets: the repository, and the ingest sequence that never leaves half a data set.

Ingest order: parse and check the staged file (nothing stored yet); look for an identical
upload; write the normalized NPZ under `datasets/<id>.npz`; insert the row and commit. The id is
derived from the file's SHA-256 and how it was read, so:

- a failure before the write stores nothing; a failure of the insert deletes the file again
  (unless a row names it: an identical upload that committed first, whose file it is too);
- a crash between the write and the commit leaves at most `datasets/<id>.npz` with no row,
  and the next identical upload overwrites it (same key, same bytes) and inserts the row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from core.artifacts import Artifacts
from core.data import Arrays, DatasetInfo
from core.data.cache import ArrayCache
from core.data.catalog import UploadedDataset, is_upload_id
from core.data.upload_types import UploadOptions
from core.data.uploads import ParsedDataset, from_npz, parse_upload, write_npz
from core.errors import ConflictError, NotFoundError
from core.store.job_queries import ParamFilter, param_condition
from core.store.models import DEFAULT_PROJECT, Dataset, Job, JobStatus, Sweep, SweepStatus
from core.store.projects import check_upload_bytes, in_project, lock_project

Sessions = Callable[[], AbstractContextManager[Session]]


def dataset_id(sha256: str, target: str, task: str, project: str = DEFAULT_PROJECT) -> str:
    """Content-addressed within a project: the same file read the same way is the same data
    set. (The default project's ids are those made before projects existed.)"""
    scope = "" if project == DEFAULT_PROJECT else f"\0{project}"
    text = f"{sha256}\0{target}\0{task}{scope}"
    return "ds_" + hashlib.sha256(text.encode()).hexdigest()[:20]


def get_dataset(session: Session, *, dataset_id: str, project: str | None = None) -> Dataset:
    """The upload; NotFoundError also when it belongs to another project than `project`."""
    row = session.get(Dataset, dataset_id) if is_upload_id(dataset_id) else None
    if not in_project(row, project):
        raise NotFoundError(f"no uploaded data set with id {dataset_id!r}")
    return row


def list_datasets(session: Session, *, project: str | None = None) -> list[Dataset]:
    query = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)
    if project is not None:
        query = query.where(Dataset.project == project)
    return list(session.scalars(query))


def jobs_using(session: Session, *, dataset_id: str) -> list[str]:
    """Queued or running jobs whose spec names the data set (to train or to validate on)."""
    dialect = session.get_bind().dialect.name
    names = [
        param_condition(dialect, ParamFilter(("dataset", field), dataset_id))
        for field in ("name", "validation")
    ]
    active = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    query = select(Job.id).where(Job.status.in_(active), or_(*names)).order_by(Job.created_at)
    return list(session.scalars(query))


def sweeps_using(session: Session, *, dataset_id: str) -> list[str]:
    """Sweeps still making trials whose base or parameter values name the data set: their
    future trials would need it. Read as text, since a parameter may set it at any path."""
    live = [SweepStatus.RUNNING.value, SweepStatus.PAUSED.value]
    rows = session.execute(select(Sweep.id, Sweep.spec).where(Sweep.status.in_(live)))
    return [sweep_id for sweep_id, spec in rows if f'"{dataset_id}"' in json.dumps(spec)]


def delete_dataset(session: Session, *, dataset_id: str, project: str | None = None) -> str:
    """Delete the row (the caller commits, then deletes the returned artifact key)."""
    row = get_dataset(session, dataset_id=dataset_id, project=project)
    if busy := jobs_using(session, dataset_id=dataset_id):
        shown = ", ".join(busy[:5]) + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
        raise ConflictError(
            f"the data set {dataset_id} is in use by {len(busy)} queued or running "
            f"job{'s' if len(busy) > 1 else ''} ({shown}); cancel them or wait for them to end"
        )
    if sweeps := sweeps_using(session, dataset_id=dataset_id):
        raise ConflictError(
            f"the data set {dataset_id} is in use by the running or paused sweep"
            f"{'s' if len(sweeps) > 1 else ''} {', '.join(sweeps)}; cancel or finish them first"
        )
    session.delete(row)
    session.flush()
    return row.artifact_key


def info_of(row: Dataset) -> DatasetInfo:
    return DatasetInfo(
        row.task,  # type: ignore[arg-type]
        tuple(row.feature_shape),
        row.rows,
        row.num_classes,
        tuple(row.target_shape),
    )


def uploaded_of(row: Dataset) -> UploadedDataset:
    """A table's encoding travels on (into the model's preprocessing); an NPZ has none."""
    encoding = row.encoding or {}
    table = None
    if encoding.get("columns"):
        table = {k: encoding.get(k) or {} for k in ("columns", "features", "categories")}
    return UploadedDataset(row.id, info_of(row), row.artifact_key, encoding.get("classes"), table)


@dataclass(frozen=True)
class Upload:
    """A staged upload: the file on local disk, as received, and how to read it."""

    path: Path
    sha256: str
    size_bytes: int
    name: str
    options: UploadOptions
    project: str = DEFAULT_PROJECT
    created_by: str | None = None
    max_project_bytes: int | None = None  # the project's upload quota


def ingest(sessions: Sessions, artifacts: Artifacts, upload: Upload) -> tuple[Dataset, bool]:
    """(the data set, whether it is new). Raises UploadError for a file that cannot be used,
    QuotaExceededError past the project's upload quota (checked again, under the project's
    lock, with the row's insert)."""
    parsed = parse_upload(upload.path, upload.options)
    target = upload.options.target or ""
    new_id = dataset_id(upload.sha256, target, parsed.task, upload.project)
    with sessions() as session:
        if (existing := session.get(Dataset, new_id)) is not None:
            return existing, False  # a repeated upload: found before the quota is counted
    _check_quota(sessions, upload)
    key = f"datasets/{new_id}.npz"
    artifacts.write_from(key, lambda path: write_npz(parsed.arrays, path))
    try:
        with sessions() as session:
            _check_quota(sessions, upload, session)
            row = _row(new_id, key, upload, target, parsed)
            session.add(row)
            session.commit()
            return row, True
    except IntegrityError:
        with sessions() as session:
            if (existing := session.get(Dataset, new_id)) is not None:
                return existing, False  # an identical upload won the race: same file, kept
        artifacts.delete(key)
        raise
    except BaseException:
        _delete_unless_named(sessions, artifacts, new_id, key)
        raise


def _check_quota(sessions: Sessions, upload: Upload, session: Session | None = None) -> None:
    if upload.max_project_bytes is None:
        return
    if session is not None:  # with the insert: under the project's lock
        lock_project(session, upload.project)
        check_upload_bytes(session, upload.project, upload.max_project_bytes, upload.size_bytes)
        return
    with sessions() as fresh:
        check_upload_bytes(fresh, upload.project, upload.max_project_bytes, upload.size_bytes)


def _delete_unless_named(sessions: Sessions, artifacts: Artifacts, new_id: str, key: str) -> None:
    try:
        with sessions() as session:
            named = session.get(Dataset, new_id) is not None
    except SQLAlchemyError:
        return  # the store is away: leave the file for the next identical upload to overwrite
    if not named:
        artifacts.delete(key)


def _row(new_id: str, key: str, upload: Upload, target: str, parsed: ParsedDataset) -> Dataset:
    return Dataset(
        id=new_id,
        project=upload.project,
        created_by=upload.created_by,
        name=upload.name or upload.path.name,
        format=parsed.format,
        sha256=upload.sha256,
        target=target,
        task=parsed.task,
        size_bytes=upload.size_bytes,
        rows=len(parsed.arrays),
        feature_shape=list(parsed.feature_shape),
        target_shape=list(parsed.target_shape),
        num_classes=parsed.num_classes,
        encoding=parsed.encoding.as_dict(),
        artifact_key=key,
    )


@dataclass(frozen=True)
class StoreUploads:
    """`UploadedDatasets` over SQL (metadata, one short session per look-up) and artifacts."""

    sessions: Sessions
    artifacts: Artifacts
    project: str | None = None  # None: any project's (a worker loading its job's data set)
    cache: ArrayCache | None = None  # a worker process's recent data sets (core.data.cache)

    def find(self, dataset_id: str) -> UploadedDataset | None:
        with self.sessions() as session:
            return SessionUploads(session, self.project).find(dataset_id)

    def load(self, dataset: UploadedDataset) -> Arrays:
        if self.cache is None:
            return self._read(dataset)
        return self.cache.get(dataset.id, lambda: self._read(dataset))

    def _read(self, dataset: UploadedDataset) -> Arrays:
        try:
            data = self.artifacts.read(dataset.artifact_key)
        except FileNotFoundError:
            raise NotFoundError(
                f"the arrays of data set {dataset.id} are not in the artifacts store "
                f"({dataset.artifact_key!r})"
            ) from None
        return from_npz(data)


@dataclass(frozen=True)
class SessionUploads:
    """`UploadedDatasets` for planning inside an open transaction (the sweep controller's):
    finds the metadata through that session; planning never loads arrays."""

    session: Session
    project: str | None = None

    def find(self, dataset_id: str) -> UploadedDataset | None:
        row = self.session.get(Dataset, dataset_id)
        if not in_project(row, self.project):
            return None
        return uploaded_of(row)

    def load(self, dataset: UploadedDataset) -> Arrays:
        raise RuntimeError("planning loads no arrays")
