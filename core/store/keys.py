"""API keys: made, listed, revoked, and found by their secret. Only a SHA-256 of each key is
stored: a key is 256 random bits, so a fast hash is enough (no password stretching needed).

A key reads `epk_<id>_<secret>`: the recognizable prefix lets secret scanners find leaked keys,
and `<id>` names the key in lists and in the `created_by` of what it made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import InvalidArgumentError, NotFoundError
from core.store.base import utcnow
from core.store.models import ApiKey
from core.store.projects import ensure_project
from core.store.roles import Role

PREFIX = "epk_"
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
KEY_SHAPE = re.compile(r"^epk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class KeyInfo:
    """What a request's key grants; never the secret."""

    id: str
    project: str
    role: Role


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_project_name(project: str) -> str:
    if not PROJECT_NAME.match(project):
        raise InvalidArgumentError(
            "project: expected 1 to 64 lowercase letters, digits, '_', '.' or '-', starting "
            f"with a letter or digit. Received: {project!r}"
        )
    return project


def create_key(session: Session, *, project: str, role: Role, name: str = "") -> tuple[ApiKey, str]:
    """A new key (the caller commits): its row and the key itself, to be shown once."""
    check_project_name(project)
    ensure_project(session, project)
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(id=key_id, secret_hash=hash_secret(key), project=project, role=role, name=name)
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session, *, project: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if project is not None:
        query = query.where(ApiKey.project == project)
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: str) -> ApiKey:
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    row = session.get(ApiKey, key_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no API key with id {key_id!r}")
    return row


def find_key(session: Session, key: str) -> KeyInfo | None:
    """The live key with this secret; None for a malformed, unknown or revoked one."""
    if not KEY_SHAPE.match(key):
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(key)))
    if row is None or row.revoked_at is not None:
        return None
    return KeyInfo(row.id, row.project, Role(row.role))
