"""`epochal`: the Epochal API from a terminal.

Jobs, data sets, models, sweeps and the fleet through `epochal_client.Client`; the server's own
verbs (serve, api, worker, migrate, keys) join when the server distribution is installed: it
registers them under the entry-point group `epochal.commands`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from epochal_client.cli import datasets, fleet, jobs, keras_import, predict, sweeps

PLUGINS = "epochal.commands"  # entry points: callables taking the subparsers to add to
SERVER_VERBS = ("serve", "api", "worker", "migrate", "keys")  # the server distribution's


def _client_logging(verbose: bool) -> None:
    """A command's own output only: the HTTP library's line per request with --verbose."""
    if not logging.root.handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    level = logging.INFO if verbose else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(level)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="epochal", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="also the HTTP library's log lines")
    p.set_defaults(setup_logging=_client_logging)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    jobs.register(sub)
    sweeps.register(sub)
    fleet.register(sub)
    datasets.register(sub)
    predict.register(sub)
    keras_import.register(sub)
    for plugin in entry_points(group=PLUGINS):
        try:
            register = plugin.load()
        except (
            ImportError,
            AttributeError,
        ) as e:  # a broken server install: the client's verbs still work
            print(
                f"epochal: {plugin.value} is unavailable: {type(e).__name__}: {e}", file=sys.stderr
            )
            continue
        register(sub)
    return p


def _server_verb_missing(p: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    verbs = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb in SERVER_VERBS and verb not in verbs:
        return (
            f"epochal: {verb!r} is a verb of the server, which is not installed here (only the "
            "light client is): install both from the repository with `pip install ./client .`"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    if message := _server_verb_missing(p, argv):
        print(message, file=sys.stderr)
        return 2
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # argparse: 2 on a usage error, 0 after --help
        return e.code if isinstance(e.code, int) else 2
    args.setup_logging(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
