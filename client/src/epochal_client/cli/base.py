"""What every API subcommand shares: --server and --json, one client, and the exit codes.

Exit codes: 0 done; 1 the job or sweep failed (or was cancelled); 2 usage (a bad argument or
spec file); 3 the API refused (not found, invalid, conflict, no access); 4 the server could not
be reached (or stayed overloaded through the retries); 130 the watching was stopped by Ctrl-C
(the job goes on).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any

import httpx
from rich.console import Console

from epochal_client import Client, EpochalAPIError, EpochalConnectionError
from epochal_client.cli.output import console, print_json
from epochal_client.transport import RETRY_STATUSES, default_url

Command = Callable[[Client, argparse.Namespace, Console], int]


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    UNREACHABLE = 4
    INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def exit_code(error: Exception) -> Exit:
    if isinstance(error, EpochalConnectionError | httpx.HTTPError):
        return Exit.UNREACHABLE
    if isinstance(error, EpochalAPIError):
        # A 502/503/504 that outlasted the retries (or was not resent: a POST that may have
        # been applied) is the server being unreachable, not a refusal.
        return Exit.UNREACHABLE if error.status in RETRY_STATUSES else Exit.REFUSED
    return Exit.USAGE  # an unreadable or malformed file, a bad --set


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            with Client(args.server) as client:
                return command(client, args, console())
        # OSError and ValueError: an unreadable or malformed spec or data file.
        # httpx.HTTPError: none should pass the client's wrapping; should one, no traceback.
        except (EpochalAPIError, EpochalConnectionError, httpx.HTTPError, OSError, ValueError) as e:
            console(stderr=True).print(f"error: {e}", markup=False)
            return exit_code(e)
        except KeyboardInterrupt:  # Ctrl-C while watching a sweep, paging a list, ...
            note = "interrupted: what the server has already taken goes on (a sweep, a job)"
            console(stderr=True).print(note, markup=False)
            return Exit.INTERRUPTED

    return run


def add_command(sub: Any, name: str, command: Command, help_: str) -> argparse.ArgumentParser:
    """A subcommand that runs `command` with a client of --server; `--json` prints the API's
    answer as JSON instead of tables."""
    sp = sub.add_parser(name, help=help_, description=help_)
    sp.add_argument(
        "--server",
        default=None,
        help=f"the API's URL (now {default_url()}: EPOCHAL_URL, else EPOCHAL_API_HOST and "
        "EPOCHAL_API_PORT, else http://127.0.0.1:8000); EPOCHAL_API_KEY is sent as its key",
    )
    sp.add_argument("--json", action="store_true", help="print JSON for scripts, not tables")
    sp.set_defaults(func=_run(command))
    return sp


def add_paging(sp: argparse.ArgumentParser, what: str) -> None:
    """--limit, and --cursor or --all (not both), for a verb that lists `what`."""
    sp.add_argument("--limit", type=int, default=20, help=f"{what} per page")
    pages = sp.add_mutually_exclusive_group()
    pages.add_argument("--cursor", default=None, help="the page after the one that printed it")
    pages.add_argument("--all", action="store_true", help="every page")


def one_page_or_all(
    args: argparse.Namespace,
    page: Callable[[str | None], Any],
    every: Callable[[], Iterable[Any]],
) -> tuple[list[Any], str | None]:
    """With --all every item, `--limit` at a time, and no cursor; else the page at --cursor
    and the cursor of the next one."""
    if args.all:
        return list(every()), None
    found = page(args.cursor)
    return found.items, found.next_cursor


def print_page(
    out: Console, args: argparse.Namespace, items: list[Any], cursor: str | None
) -> bool:
    """--json: the API's page ({"items", "next_cursor"}), and True (nothing else to print)."""
    if args.json:
        print_json(out, {"items": items, "next_cursor": cursor})
    return bool(args.json)


def more_line(out: Console, cursor: str | None) -> None:
    if cursor:
        out.print(f"more: --cursor {cursor} (or --all)")
