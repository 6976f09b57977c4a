"""`epochal keys create | list | revoke`: API keys, made on the server's side (straight in the
store named by EPOCHAL_DATABASE_URL), so that the first admin key of a deployment can be made
before any key exists (the parser is cli/key_verbs.py, which imports this module only when a
keys verb runs):

    docker compose run --rm api epochal keys create --role admin
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import EpochalError
from core.settings import get_settings
from core.store import keys as key_store
from core.store.db import session_factory
from core.store.models import DEFAULT_PROJECT
from core.store.roles import Role


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except EpochalError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3  # refused, as the client's commands say it (epochal_client.cli.base)

    return run


@_guarded
def create(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        row, key = key_store.create_key(
            session,
            project=DEFAULT_PROJECT if args.project is None else args.project,
            role=Role(args.role),
            name=args.name,
        )
        session.commit()
    print(key)
    print(
        f"key {row.id}: {row.role} on project {row.project!r}. Keep it now: it is shown only "
        "once (send it as 'Authorization: Bearer <key>', or set EPOCHAL_API_KEY)",
        file=sys.stderr,
    )
    return 0


@_guarded
def list_(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        rows = key_store.list_keys(session, project=args.project)
    print(f"{'id':<14}{'project':<20}{'role':<8}{'created':<27}{'revoked':<27}name")
    for r in rows:
        revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"
        created = r.created_at.isoformat(timespec="seconds")
        print(f"{r.id:<14}{r.project:<20}{r.role:<8}{created:<27}{revoked:<27}{r.name}")
    return 0


@_guarded
def revoke(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        row = key_store.revoke_key(session, key_id=args.id)
        session.commit()
    print(f"key {row.id} revoked; it stops working within seconds")
    return 0
