"""`epochal sweep | sweep-status | sweep-list | leaderboard | sweep-cancel | sweep-pause |
sweep-resume | sweep-delete`: hyperparameter sweeps from a terminal, as `epochal_client.cli.jobs` does for jobs."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from epochal_client import Client, Leaderboard, Sweep, load_spec
from epochal_client.cli.base import add_command, add_paging, more_line, one_page_or_all, print_page
from epochal_client.cli.output import num, print_json, short, table

COUNTS = ("queued", "running", "succeeded", "pruned", "failed", "cancelled")


def sweep_line(sweep: Sweep) -> str:
    m = sweep.metric
    cap = "-" if sweep.run_cap is None else sweep.run_cap
    return (
        f"{sweep.id}  {sweep.name or '-'}  {sweep.status}  {sweep.method}  "
        f"{m.goal} {m.name}  trials {sweep.trials}/{cap}  max_parallel={sweep.max_parallel}"
    )


def parameters_table(sweep: Sweep) -> Table:
    rows = [(path, _distribution(d)) for path, d in sweep.parameters.items()]
    return table("parameters", ["path", "searched over"], rows)


def _distribution(d: Any) -> str:
    if not isinstance(d, dict):
        return short(d)
    if "values" in d:
        return short(", ".join(num(v) for v in d["values"]))
    if "value" in d:
        return f"= {num(d['value'])}"
    bounds = {k: v for k, v in d.items() if k != "distribution"}
    args = ", ".join(f"{k}={num(v)}" for k, v in bounds.items())
    return f"{d.get('distribution', '?')}({args})"


def progress_table(sweep: Sweep) -> Table:
    """The counts of trials by status and the best value so far, on one row."""
    counts = sweep.counts
    best = sweep.best
    row = [
        sweep.status,
        sweep.trials,
        *(getattr(counts, c) for c in COUNTS),
        None if best is None else best.value,
        None if best is None else best.job_id,
    ]
    columns = ["status", "trials", *COUNTS, f"best {sweep.metric.name}", "best job"]
    return table(f"sweep {sweep.id}", columns, [row])


def progress_view(sweep: Sweep) -> Group:
    parts: list[Table | Text] = [progress_table(sweep)]
    if sweep.best is not None and sweep.best.params:
        params = "  ".join(f"{k}={num(v)}" for k, v in sweep.best.params.items())
        parts.append(Text(f"best params: {params}"))
    return Group(*parts)


def leaderboard_table(board: Leaderboard) -> Table:
    """One row per trial: rank, job, status, value, its epoch, epochs run, then each param."""
    paths: list[str] = []
    for t in board.trials:
        paths.extend(p for p in t.params if p not in paths)
    rows = [
        [t.rank, t.job_id, t.status, t.value, t.epoch, t.epochs_run]
        + [num(t.params.get(p)) for p in paths]
        for t in board.trials
    ]
    m = board.metric
    columns = ["rank", "job", "status", m.name, "epoch", "epochs run", *paths]
    return table(f"sweep {board.sweep_id}: {m.goal} {m.name}", columns, rows)


# --- commands ---------------------------------------------------------------------------


def sweep(client: Client, args: argparse.Namespace, out: Console) -> int:
    s = client.create_sweep(load_spec(args.spec))
    if args.json:  # the new sweep; with --watch, the ended one (its best trial included)
        if args.watch:
            s = client.wait_sweep(s.id, poll=args.poll)
        print_json(out, s)
        return 0 if not args.watch or (s.status == "finished" and s.best is not None) else 1
    out.print(s.id)
    out.print(sweep_line(s))
    out.print(parameters_table(s))
    if not args.watch:
        return 0
    with Live(progress_view(s), console=out, refresh_per_second=4) as live:
        s = client.wait_sweep(
            s.id, poll=args.poll, on_progress=lambda x: live.update(progress_view(x))
        )
    out.print(leaderboard_table(client.leaderboard(s.id, limit=args.top)))
    return 0 if s.status == "finished" and s.best is not None else 1


def sweep_status(client: Client, args: argparse.Namespace, out: Console) -> int:
    s = client.get_sweep(args.id)
    if args.json:
        print_json(out, s)
        return 0
    out.print(sweep_line(s))
    out.print(parameters_table(s))
    out.print(progress_view(s))
    return 0


def sweep_list(client: Client, args: argparse.Namespace, out: Console) -> int:
    sweeps, cursor = one_page_or_all(
        args,
        lambda at: client.list_sweeps(status=args.status, limit=args.limit, cursor=at),
        lambda: client.iter_sweeps(status=args.status, limit=args.limit),
    )
    if print_page(out, args, sweeps, cursor):
        return 0
    rows = [
        (
            s.id,
            s.name or "-",
            s.method,
            s.status,
            f"{s.counts.done}/{s.trials}",
            s.metric.name,
            None if s.best is None else s.best.value,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for s in sweeps
    ]
    columns = ["id", "name", "method", "status", "done/trials", "metric", "best", "created"]
    out.print(table(f"{len(rows)} sweeps", columns, rows))
    more_line(out, cursor)
    return 0


def leaderboard(client: Client, args: argparse.Namespace, out: Console) -> int:
    board = client.leaderboard(args.id, limit=args.limit)
    if args.json:
        print_json(out, board)
        return 0
    if not board.trials:
        out.print(f"sweep {args.id} has no trials yet")
        return 0
    out.print(leaderboard_table(board))
    return 0


def _action(name: str) -> Any:
    def act(client: Client, args: argparse.Namespace, out: Console) -> int:
        s = getattr(client, f"{name}_sweep")(args.id)
        if args.json:
            print_json(out, s)
            return 0
        out.print(f"{s.id}  {s.status}")
        return 0

    return act


def sweep_delete(client: Client, args: argparse.Namespace, out: Console) -> int:
    client.delete_sweep(args.id)
    if args.json:  # the API answers 204 without a body
        print_json(out, {"id": args.id, "deleted": True})
        return 0
    out.print(f"{args.id} deleted, with its trials")
    return 0


# --- wiring -----------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the sweep subcommands to `epochal`'s subparsers."""
    sp = add_command(sub, "sweep", sweep, "start a sweep from a SweepSpec (.yaml or .json)")
    sp.add_argument("spec", help="the sweep spec file")
    sp.add_argument("--watch", action="store_true", help="a live table until it ends")
    sp.add_argument("--poll", type=float, default=2.0, help="seconds between polls with --watch")
    sp.add_argument("--top", type=int, default=10, help="leaderboard rows after --watch")
    add_command(sub, "sweep-status", sweep_status, "show a sweep: counts and best").add_argument(
        "id"
    )
    sp = add_command(sub, "sweep-list", sweep_list, "list sweeps, newest first")
    sp.add_argument("--status", default=None, help="running, paused, finished, cancelled")
    add_paging(sp, "sweeps")
    sp = add_command(sub, "leaderboard", leaderboard, "a sweep's trials ranked by its metric")
    sp.add_argument("id", metavar="SWEEP")
    sp.add_argument("--limit", type=int, default=None, help="the top N trials")
    for name, help_ in (
        ("cancel", "cancel a sweep"),
        ("pause", "pause a sweep: no new trials until it is resumed"),
        ("resume", "resume a paused sweep"),
    ):
        add_command(sub, f"sweep-{name}", _action(name), help_).add_argument("id")
    add_command(
        sub, "sweep-delete", sweep_delete, "delete an ended sweep with all its trials"
    ).add_argument("id")
