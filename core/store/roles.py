"""What an API key may do. Apart from the key store (SQLAlchemy), so that `epochal keys`' parser
names the roles without loading it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READ = "read"  # GET only
    WRITE = "write"  # also submit, cancel, resume, clone, upload, delete, sweeps
    ADMIN = "admin"  # also keys, and any project

    def allows(self, needed: Role) -> bool:
        order = [Role.READ, Role.WRITE, Role.ADMIN]
        return order.index(self) >= order.index(needed)
