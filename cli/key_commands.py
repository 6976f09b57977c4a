"""`epochal keys create | list | revoke`: API keys, made on the server's side (straight in the
store named by EPOCHAL_DATABASE_URL), so that the first admin key of a deployment can be made
before any key exists:

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
from core.store.keys import Role
from core.store.models import DEFAULT_PROJECT


def create(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        row, key = key_store.create_key(
            session, project=args.project, role=Role(args.role), name=args.name
        )
        session.commit()
    print(key)
    print(
        f"key {row.id}: {row.role} on project {row.project!r}. Keep it now: it is shown only "
        "once (send it as 'Authorization: Bearer <key>', or set EPOCHAL_API_KEY)",
        file=sys.stderr,
    )
    return 0


def list_(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        rows = key_store.list_keys(session, project=args.project)
    print(f"{'id':<14}{'project':<20}{'role':<8}{'created':<27}{'revoked':<27}name")
    for r in rows:
        revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"
        created = r.created_at.isoformat(timespec="seconds")
        print(f"{r.id:<14}{r.project:<20}{r.role:<8}{created:<27}{revoked:<27}{r.name}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    with session_factory(get_settings().database_url)() as session:
        row = key_store.revoke_key(session, key_id=args.id)
        session.commit()
    print(f"key {row.id} revoked; it stops working within seconds")
    return 0


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except EpochalError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3  # refused, as the client's commands say it (epochal_client.cli.base)

    return run


def register(sub: Any, setup_logging: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke (on the server's side)")
    keys.set_defaults(setup_logging=setup_logging)
    verbs = keys.add_subparsers(dest="verb", required=True)
    sp = verbs.add_parser("create", help="make a key and print it (once)")
    sp.add_argument("--project", default=DEFAULT_PROJECT, help="its project (default: default)")
    sp.add_argument("--role", choices=[r.value for r in Role], default=Role.WRITE.value)
    sp.add_argument("--name", default="", help="a label, e.g. who holds it")
    sp.set_defaults(func=_guarded(create))
    sp = verbs.add_parser("list", help="list keys (never their secrets)")
    sp.add_argument("--project", default=None, help="one project's keys")
    sp.set_defaults(func=_guarded(list_))
    sp = verbs.add_parser("revoke", help="revoke a key by its id")
    sp.add_argument("id")
    sp.set_defaults(func=_guarded(revoke))
