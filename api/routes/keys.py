"""/v1/keys: API keys, for admin keys only. A new key is shown once, in the creation's answer;
only its hash is kept. (`epochal keys` does the same from the server's side, for the first key.)"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.deps import SessionDep
from core.spec.base import Spec
from core.store import keys as key_store
from core.store.keys import Role
from core.store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyIn(Spec):  # frozen, extra="forbid", and no text that cannot be stored
    project: str = Field(min_length=1, max_length=64, pattern=key_store.PROJECT_NAME.pattern)
    role: Role
    name: str = Field("", max_length=200)


class KeyOut(BaseModel):
    id: str
    project: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(
            id=row.id,
            project=row.project,
            role=Role(row.role),
            name=row.name,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself: shown this once, never again")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewKeyOut)
def create_key(body: KeyIn, session: SessionDep, me: CallerDep) -> NewKeyOut:
    row, key = key_store.create_key(session, project=body.project, role=body.role, name=body.name)
    session.commit()
    return NewKeyOut(**KeyOut.of(row).model_dump(), key=key)


@router.get("", response_model=list[KeyOut])
def list_keys(session: SessionDep, me: CallerDep) -> list[KeyOut]:
    """The keys of the admin's project (`?project=` another's, `*` every project's), revoked
    ones too; never a secret."""
    return [KeyOut.of(row) for row in key_store.list_keys(session, project=me.project)]


@router.delete("/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, session: SessionDep, me: CallerDep) -> KeyOut:
    """The key stops working within EPOCHAL_AUTH_CACHE_SECONDS."""
    row = key_store.revoke_key(session, key_id=key_id)
    session.commit()
    return KeyOut.of(row)
