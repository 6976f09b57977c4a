"""Idempotent POSTs: the first answer to a request sent with an `Idempotency-Key` is stored in
the same transaction as what the request made, and the same key with the same request gets
that answer again for 24 hours; the same key with another request is refused.

A duplicate racing the original waits on the record's primary key (PostgreSQL) or the database
lock (SQLite) and, once the original commits, fails to insert: its transaction rolls back and
it answers the original's response instead, so nothing is made twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.errors import IdempotencyKeyReusedError, RequestInProgressError
from core.store.base import utcnow
from core.store.models import IdempotencyRecord

KEEP = timedelta(hours=24)
IN_PROGRESS = 0  # status of a key taken by a request that has not answered yet
ABANDONED = timedelta(minutes=15)  # ... and after this long, by one that never will


@dataclass(frozen=True)
class IdempotencyKey:
    """A request's key and the fingerprint of what it asks (method, path, query, body)."""

    project: str
    key: str
    fingerprint: str


def fingerprint(method: str, path: str, query: Iterable[tuple[str, str]], body_sha256: str) -> str:
    parts = [method.upper(), path, *(f"{k}={v}" for k, v in sorted(query)), body_sha256]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]


def find(session: Session, idem: IdempotencyKey) -> Replay | None:
    """The stored answer for this key, if it is younger than 24 h; IdempotencyKeyReusedError
    when it was first sent with another request."""
    row = session.get(IdempotencyRecord, (idem.project, idem.key), populate_existing=True)
    if row is None or row.created_at < utcnow() - KEEP:
        return None
    if row.status_code == IN_PROGRESS:
        if row.created_at < utcnow() - ABANDONED:
            session.delete(row)  # its request died: the key is free again
            session.flush()
            return None
        raise RequestInProgressError(
            f"a request with Idempotency-Key {idem.key!r} is still in progress; "
            "send it again once that one has answered"
        )
    if row.fingerprint != idem.fingerprint:
        raise IdempotencyKeyReusedError(
            f"Idempotency-Key {idem.key!r} was first sent with another request (method, path, "
            "query or body) within the last 24 hours; use a new key for a new request"
        )
    return Replay(row.status_code, row.response)


def remember(
    session: Session, idem: IdempotencyKey, *, status_code: int, response: dict[str, Any]
) -> None:
    """Store the answer within the caller's transaction (which also drops expired records of
    the key's project, a few at a time)."""
    expired = select(IdempotencyRecord.key).where(
        IdempotencyRecord.project == idem.project, IdempotencyRecord.created_at < utcnow() - KEEP
    )
    stale = [idem.key, *session.scalars(expired.limit(100))]  # this key's own, if it expired
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.project == idem.project,
            IdempotencyRecord.key.in_(stale),
            IdempotencyRecord.created_at < utcnow() - KEEP,
        )
    )
    session.add(
        IdempotencyRecord(
            project=idem.project,
            key=idem.key,
            fingerprint=idem.fingerprint,
            status_code=status_code,
            response=response,
        )
    )
    session.flush()


def complete(
    session: Session,
    idem: IdempotencyKey,
    *,
    response: dict[str, Any],
    status_code: int | None = None,
) -> None:
    """Replace the stored answer by the final one (a sweep's, once its first trials exist; an
    upload's, once it is stored)."""
    values: dict[str, Any] = {"response": response}
    if status_code is not None:
        values["status_code"] = status_code
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.project == idem.project, IdempotencyRecord.key == idem.key)
        .values(**values)
    )


def forget(session: Session, idem: IdempotencyKey) -> None:
    """Drop the record again (what it answered was undone: a broker that refused the job)."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.project == idem.project, IdempotencyRecord.key == idem.key
        )
    )
