"""`epochal submit | status | metrics | cancel | list | compare`: the API from a terminal.

Each command talks to the API at --server (default `epochal_client.http.default_url`:
EPOCHAL_URL, else EPOCHAL_API_HOST/EPOCHAL_API_PORT, else http://127.0.0.1:8000) through
`epochal_client.Client`, prints plain text and rich tables (or JSON with --json), and turns an
API error into its problem detail on stderr and an exit status (`epochal_client.cli.base`).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from epochal_client import Client, Job, load_spec
from epochal_client.cli.base import Command, add_command
from epochal_client.cli.output import short, table


def _job_line(job: Job) -> str:
    progress = job.progress
    epochs = f"epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')}"
    return f"{job.id}  {job.name}  {job.status}  {epochs}  queue={job.queue}"


def _print_job(out: Console, job: Job) -> None:
    out.print(_job_line(job))
    if (params := job.summary.get("parameter_count")) is not None:
        out.print(f"parameters: {params:,}")
    if job.error and job.finished:  # on a running job: what ended its last attempt
        out.print(f"error: {job.error.get('type', '')}: {job.error.get('message', '')}")
    for warning in job.warnings:
        out.print(f"warning: {warning.code}: {warning.message}", markup=False)
    if job.summary.get("stop_reason"):
        out.print(f"stopped: {job.summary['stop_reason']}")
    if job.final:
        out.print(_metrics_table(job))


def _metrics_table(job: Job) -> Table:
    names = sorted(k for k in job.final if k != "epoch")
    return table(
        "metrics", ["metric", "final", "best"], [(n, job.final[n], job.best.get(n)) for n in names]
    )


# --- commands ---------------------------------------------------------------------------


def submit(client: Client, args: argparse.Namespace, out: Console) -> int:
    spec = load_spec(args.spec)
    if args.epochs is not None:
        spec.setdefault("training", {})["epochs"] = args.epochs
    job = client.submit(spec)
    out.print(job.id)
    out.print(f"{job.name}: {job.status} on queue {job.queue}")
    for warning in job.warnings:
        out.print(f"warning: {warning.code}: {warning.message}")
    layers = job.summary.get("layers", [])
    out.print(
        table(
            f"{job.summary.get('parameter_count', 0):,} parameters",
            ["layer", "type", "output shape", "params"],
            [(x["name"], x["type"], str(tuple(x["output_shape"])), x["params"]) for x in layers],
        )
    )
    if not args.wait:
        return 0
    job = _wait_with_progress(client, job, out, args.poll)
    _print_job(out, job)
    return 0 if job.status == "succeeded" else 1


def _wait_with_progress(client: Client, job: Job, out: Console, poll: float) -> Job:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task(job.status, total=job.progress.get("epochs") or None)

        def show(j: Job) -> None:
            bar.update(
                task,
                completed=j.progress.get("epoch", 0),
                total=j.progress.get("epochs") or None,
                description=j.status,
            )

        return client.wait(job.id, poll=poll, on_progress=show)


def status(client: Client, args: argparse.Namespace, out: Console) -> int:
    _print_job(out, client.get(args.id))
    return 0


def metrics(client: Client, args: argparse.Namespace, out: Console) -> int:
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    series = client.metrics(args.id, names=names, max_points=args.max_points)
    if not series:
        out.print(f"job {args.id} has no metrics yet")
        return 0
    rows = [
        (s.name, len(s.values), s.epochs[-1], s.steps[-1], s.values[-1], _finite_min(s.values))
        for s in series
    ]
    out.print(table(f"job {args.id}", ["series", "points", "epoch", "step", "last", "min"], rows))
    return 0


def _finite_min(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else None


def cancel(client: Client, args: argparse.Namespace, out: Console) -> int:
    job = client.cancel(args.id)
    note = "cancel requested" if job.cancel_requested and not job.finished else job.status
    out.print(f"{job.id}  {note}")
    return 0


def list_jobs(client: Client, args: argparse.Namespace, out: Console) -> int:
    filters = {"status": args.status, "tag": args.tag, "sweep_id": args.sweep}
    if args.all:  # every page, `--limit` jobs at a time
        jobs, cursor = list(client.iter_jobs(limit=args.limit, **filters)), None
    else:
        page = client.list(limit=args.limit, cursor=args.cursor, **filters)
        jobs, cursor = page.items, page.next_cursor
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
    if cursor:
        out.print(f"more: --cursor {cursor} (or --all)")
    return 0


def compare(client: Client, args: argparse.Namespace, out: Console) -> int:
    c = client.compare(args.ids)
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
    out.print(f"{args.id} deleted")
    return 0


# --- wiring -----------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the client subcommands to `epochal`'s subparsers."""

    def add(name: str, command: Command, help_: str) -> argparse.ArgumentParser:
        return add_command(sub, name, command, help_)

    sp = add("submit", submit, "submit a job spec (.yaml or .json)")
    sp.add_argument("spec", help="the spec file")
    sp.add_argument("--wait", action="store_true", help="follow it until it ends")
    sp.add_argument("--epochs", type=int, default=None, help="override training.epochs")
    sp.add_argument("--poll", type=float, default=1.0, help="seconds between polls with --wait")
    add("status", status, "show a job").add_argument("id")
    sp = add("metrics", metrics, "the last value of each metric series of a job")
    sp.add_argument("id")
    sp.add_argument("--names", default=None, help="comma-separated series names")
    sp.add_argument("--max-points", type=int, default=None, help="downsample to N points")
    add("cancel", cancel, "cancel a job").add_argument("id")
    add("delete", delete, "delete an ended job with its metrics and files").add_argument("id")
    sp = add("list", list_jobs, "list jobs, newest first")
    sp.add_argument("--status", default=None, help="queued, running, succeeded, failed, ...")
    sp.add_argument("--tag", default=None)
    sp.add_argument("--sweep", default=None, metavar="SWEEP_ID", help="a sweep's trials")
    sp.add_argument("--limit", type=int, default=20, help="jobs per page")
    sp.add_argument("--cursor", default=None, help="the page after the one that printed it")
    sp.add_argument("--all", action="store_true", help="every page")
    sp = add("compare", compare, "compare jobs: differing params, final and best metrics")
    sp.add_argument("ids", nargs="+", metavar="ID", help="two or more job ids")
