"""The parser of `epochal keys create | list | revoke`; the handlers, which open the store, are in
cli/key_commands.py and imported when one of these verbs runs."""

from __future__ import annotations

from typing import Any

from cli.lazy import later
from core.store.roles import Role


def register(sub: Any, setup_logging: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke (on the server's side)")
    keys.set_defaults(setup_logging=setup_logging)
    verbs = keys.add_subparsers(dest="verb", required=True)
    sp = verbs.add_parser("create", help="make a key and print it (once)")
    sp.add_argument("--project", default=None, help="its project (default: default)")
    sp.add_argument("--role", choices=[r.value for r in Role], default=Role.WRITE.value)
    sp.add_argument("--name", default="", help="a label, e.g. who holds it")
    sp.set_defaults(func=later("cli.key_commands:create"))
    sp = verbs.add_parser("list", help="list keys (never their secrets)")
    sp.add_argument("--project", default=None, help="one project's keys")
    sp.set_defaults(func=later("cli.key_commands:list_"))
    sp = verbs.add_parser("revoke", help="revoke a key by its id")
    sp.add_argument("id")
    sp.set_defaults(func=later("cli.key_commands:revoke"))
