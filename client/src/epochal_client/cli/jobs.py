"""`epochal submit | status | list | cancel | resume | clone | delete | compare`: jobs from a
terminal (`metrics` is in cli/metrics.py, `follow` and `wait` in cli/follow.py).

Each command talks to the API at --server (default `epochal_client.transport.default_url`:
EPOCHAL_URL, else EPOCHAL_API_HOST/EPOCHAL_API_PORT, else http://127.0.0.1:8000) through
`epochal_client.Client`, prints plain text and rich tables (or the API's answer as JSON with
--json), and turns an API error into its problem detail on stderr and an exit status
(`epochal_client.cli.base`).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from epochal_client import Client, Job, load_spec
from epochal_client.cli import follow, metrics
from epochal_client.cli.base import (
    Command,
    add_command,
    add_paging,
    more_line,
    one_page_or_all,
    print_page,
)
from epochal_client.cli.follow import exit_status, interruptible, interval_arg, print_job, watch
from epochal_client.cli.output import console, print_json, short, table
from epochal_client.overrides import parse_assignment, with_values

INIT_FROM = ("none", "last", "best", "final")


def _set_arg(text: str) -> tuple[str, Any]:
    try:
        return parse_assignment(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--epochs, then each --set in order (a later one for the same path wins)."""
    values: dict[str, Any] = {}
    if args.epochs is not None:
        values["training.epochs"] = args.epochs
    values.update(args.set or [])
    return values


def _with_values(spec: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The spec with the overrides set; a path that does not fit it is a usage error (exit 2),
    found before any request."""
    try:
        return with_values(spec, overrides)
    except ValueError as e:
        raise ValueError(f"--set {e}") from None


def _layers_table(job: Job) -> Table:
    layers = job.summary.get("layers", [])
    return table(
        f"{job.summary.get('parameter_count', 0):,} parameters",
        ["layer", "type", "output shape", "params"],
        [(x["name"], x["type"], str(tuple(x["output_shape"])), x["params"]) for x in layers],
    )


def _queued(client: Client, job: Job, args: argparse.Namespace, out: Console) -> int:
    """A job just queued (submitted, cloned, resumed): its id on the first line, then, with
    --wait, a live bar until it ends and its final state; exit 1 unless it succeeded. With
    --json, the queued job (or with --wait the final one) and nothing else on stdout; with
    --wait --json, `job <id> queued` on stderr at once, so that a script learns the id even
    when the watching stops early."""
    args.watching = job.id  # for `interruptible`'s note
    if args.json and args.wait:
        console(stderr=True).print(f"job {job.id} queued", markup=False)
    if not args.json:
        out.print(job.id)
        out.print(f"{job.name}: {job.status} on queue {job.queue}", markup=False)
        for warning in job.warnings:
            out.print(f"warning: {warning.code}: {warning.message}", markup=False)
        if job.summary.get("layers"):
            out.print(_layers_table(job))
    if args.wait:
        job = watch(client, job.id, out, bar=not args.json, interval=args.poll)
        if not args.json:
            print_job(out, job)
    if args.json:
        print_json(out, job)
    return exit_status(job) if args.wait else 0


# --- commands ---------------------------------------------------------------------------


def submit(client: Client, args: argparse.Namespace, out: Console) -> int:
    spec = _with_values(load_spec(args.spec), _overrides(args))
    return _queued(client, client.submit(spec), args, out)


def resume(client: Client, args: argparse.Namespace, out: Console) -> int:
    return _queued(client, client.resume(args.id), args, out)


def clone(client: Client, args: argparse.Namespace, out: Console) -> int:
    overrides = _overrides(args)
    if overrides:  # a path that does not fit the source's spec: a usage error, as for submit
        _with_values(client.get(args.id).spec, overrides)
    init_from = None if args.init_from == "none" else args.init_from
    job = client.clone(
        args.id, overrides=overrides, init_from=init_from, name=args.name, tags=args.tag
    )
    return _queued(client, job, args, out)


def status(client: Client, args: argparse.Namespace, out: Console) -> int:
    job = client.get(args.id)
    if args.json:
        print_json(out, job)
    else:
        print_job(out, job)
    return 0


def cancel(client: Client, args: argparse.Namespace, out: Console) -> int:
    job = client.cancel(args.id)
    if args.json:
        print_json(out, job)
        return 0
    note = "cancel requested" if job.cancel_requested and not job.finished else job.status
    out.print(f"{job.id}  {note}")
    return 0


def list_jobs(client: Client, args: argparse.Namespace, out: Console) -> int:
    filters = {
        "status": args.status,
        "tag": args.tag,
        "sweep_id": args.sweep,
        "params": dict(args.param or []),  # a later one for the same path wins
        "order_by": args.order_by,
        "order": args.order,
    }
    jobs, cursor = one_page_or_all(
        args,
        lambda at: client.list(limit=args.limit, cursor=at, **filters),
        lambda: client.iter_jobs(limit=args.limit, **filters),
    )
    if print_page(out, args, jobs, cursor):
        return 0
    rows = [
        (
            j.id,
            j.name,
            j.status,
            f"{j.progress.get('epoch', 0)}/{j.progress.get('epochs', '?')}",
            ",".join(j.tags),
            j.final.get("val_accuracy", j.final.get("val_loss")),
            j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for j in jobs
    ]
    columns = ["id", "name", "status", "epochs", "tags", "val_accuracy/val_loss", "created"]
    out.print(table(f"{len(rows)} jobs", columns, rows))
    more_line(out, cursor)
    return 0


def compare(client: Client, args: argparse.Namespace, out: Console) -> int:
    c = client.compare(args.ids)
    if args.json:
        print_json(out, c)
        return 0
    heads = [f"{j.name} ({j.id[:8]})" for j in c.jobs]
    out.print(table("jobs", ["", *heads], [["status", *(j.status for j in c.jobs)]]))
    params = [[path, *(short(v) for v in values)] for path, values in sorted(c.params.items())]
    out.print(table("differing params", ["param", *heads], params))
    for what in ("final", "best"):
        rows = [
            [name, *(getattr(m, what) if m else None for m in runs)]
            for name, runs in sorted(c.metrics.items())
        ]
        out.print(table(f"{what} metrics", ["metric", *heads], rows))
    return 0


def delete(client: Client, args: argparse.Namespace, out: Console) -> int:
    client.delete(args.id)
    if args.json:  # the API answers 204 without a body
        print_json(out, {"id": args.id, "deleted": True})
        return 0
    out.print(f"{args.id} deleted")
    return 0


# --- wiring -----------------------------------------------------------------------------


def _queue_args(sp: argparse.ArgumentParser, what: str) -> None:
    sp.add_argument("--wait", action="store_true", help=f"a live bar until {what} ends")
    sp.add_argument(
        "--poll", type=interval_arg, default=1.0, help="seconds between updates with --wait"
    )


def _spec_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--set",
        action="append",
        type=_set_arg,
        metavar="PATH=VALUE",
        help="set a spec value (repeatable): training.optimizer.learning_rate=0.01, "
        "model.layers.0.units=64; the value is read as YAML (numbers, true, [a, b])",
    )
    sp.add_argument("--epochs", type=int, default=None, help="the same as --set training.epochs=N")


def register(sub: Any) -> None:
    """Add the job subcommands to `epochal`'s subparsers."""

    def add(name: str, command: Command, help_: str) -> argparse.ArgumentParser:
        return add_command(sub, name, command, help_)

    sp = add("submit", interruptible(submit), "submit a job spec (.yaml or .json)")
    sp.add_argument("spec", help="the spec file")
    _spec_args(sp)
    _queue_args(sp, "it")
    add("status", status, "show a job").add_argument("id")
    metrics.register(sub)
    follow.register(sub)
    add("cancel", cancel, "cancel a job").add_argument("id")
    sp = add(
        "resume",
        interruptible(resume),
        "a cancelled or failed job back to the queue, from its last checkpoint",
    )
    sp.add_argument("id")
    _queue_args(sp, "it")
    sp = add("clone", interruptible(clone), "a new job from a job's spec, with --set changes")
    sp.add_argument("id")
    _spec_args(sp)
    sp.add_argument(
        "--init-from",
        choices=INIT_FROM,
        default="none",
        help="start from the source's weights: its last or best checkpoint, or its final model "
        "(default none: fresh weights)",
    )
    sp.add_argument("--name", default=None, help="default: the source's name")
    sp.add_argument("--tag", action="append", default=None, help="replace the source's tags")
    _queue_args(sp, "the new job")
    add("delete", delete, "delete an ended job with its metrics and files").add_argument("id")
    sp = add("list", list_jobs, "list jobs, newest first (or by --order-by)")
    sp.add_argument("--status", default=None, help="queued, running, succeeded, failed, ...")
    sp.add_argument("--tag", default=None)
    sp.add_argument("--sweep", default=None, metavar="SWEEP_ID", help="a sweep's trials")
    sp.add_argument(
        "--param",
        action="append",
        type=_set_arg,
        metavar="PATH=VALUE",
        help="jobs whose spec has this value (repeatable): training.optimizer.type=adam, "
        "model.layers.0.units=64; the value is read as YAML, as for submit --set",
    )
    sp.add_argument(
        "--order-by",
        default=None,
        metavar="KEY",
        help="created_at (the default), or metric.NAME: a job's final value of that series, "
        "e.g. metric.val_accuracy (jobs without it come last)",
    )
    sp.add_argument("--order", choices=("asc", "desc"), default=None, help="default desc")
    add_paging(sp, "jobs")
    sp = add("compare", compare, "compare jobs: differing params, final and best metrics")
    sp.add_argument("ids", nargs="+", metavar="ID", help="two or more job ids")
