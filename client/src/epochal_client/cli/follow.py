"""`epochal follow | wait`, and the live bar of `submit --wait`: a job watched through its
event stream (GET /v1/jobs/{id}/events, `Client.events`).

The stream is the cheapest honest source of a live view: one connection, over which the
server sends the job's progress when it changes and only the metric points not sent yet, where
polling GET /v1/jobs/{id}/metrics would reread every series each time. A job's `progress`
holds its epoch and step but no loss; the loss and validation metrics come from the points.
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from epochal_client import Client, Event, Job
from epochal_client.cli.base import Command, Exit, add_command
from epochal_client.cli.output import console, num, print_json, table

STEP_LOSS = "batch_loss"  # the server's series of each training step's loss


def exit_status(job: Job) -> int:
    return Exit.OK if job.status == "succeeded" else Exit.FAILED


def job_line(job: Job) -> str:
    progress = job.progress
    epochs = f"epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')}"
    return f"{job.id}  {job.name}  {job.status}  {epochs}  queue={job.queue}"


def print_job(out: Console, job: Job) -> None:
    out.print(job_line(job), markup=False)
    if (params := job.summary.get("parameter_count")) is not None:
        out.print(f"parameters: {params:,}")
    if job.error and job.finished:  # on a running job: what ended its last attempt
        out.print(
            f"error: {job.error.get('type', '')}: {job.error.get('message', '')}", markup=False
        )
    for warning in job.warnings:
        out.print(f"warning: {warning.code}: {warning.message}", markup=False)
    if job.summary.get("stop_reason"):
        out.print(f"stopped: {job.summary['stop_reason']}", markup=False)
    if job.final:
        names = sorted(k for k in job.final if k != "epoch")
        rows = [(n, job.final[n], job.best.get(n)) for n in names]
        out.print(table("metrics", ["metric", "final", "best"], rows))


class Latest:
    """The last value of each series seen on the stream: the bar's loss and val metrics."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add(self, event: Event) -> None:
        for s in event.series:
            if s.values:
                self.values[s.name] = s.values[-1]

    def line(self) -> str:
        """`loss` is the latest step's loss (the epoch's mean before any step is seen), then
        every validation metric the job reports."""
        shown = {}
        loss = self.values.get(STEP_LOSS, self.values.get("loss"))
        if loss is not None:
            shown["loss"] = loss
        shown |= {k: v for k, v in sorted(self.values.items()) if k.startswith("val_")}
        return "  ".join(f"{k}={num(v)}" for k, v in shown.items())


def watch(client: Client, job_id: str, out: Console, *, bar: bool, interval: float) -> Job:
    """Follow the job until it ends, with a live bar (epoch/epochs, loss, val metrics) when
    `bar`; the final job."""
    latest = Latest()
    final: Job | None = None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed:.0f}/{task.fields[epochs]}"),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
    )
    events = client.events(job_id, interval=interval)
    first = next(events)  # a missing job or an unreachable server raises before the bar shows
    with Progress(*columns, console=out, disable=not bar) as progress:
        task = progress.add_task("waiting", total=None, epochs="?", metrics="")
        for event in itertools.chain([first], events):
            if event.event == "metrics":
                latest.add(event)
                progress.update(task, metrics=latest.line())
            elif event.event == "progress":
                p = event.data.get("progress") or {}
                epochs = p.get("epochs") or None
                progress.update(
                    task,
                    description=str(event.data.get("status", "")),
                    completed=p.get("epoch", 0),
                    total=epochs,
                    epochs=epochs or "?",
                )
            elif (final := event.job) is not None:
                p = final.progress
                progress.update(task, description=final.status, completed=p.get("epoch", 0))
    if final is None:  # events() returns only after an end event, or raises
        raise RuntimeError(f"the events of job {job_id} ended without the job")
    return final


def event_line(event: Event) -> str:
    """One line for people per event."""
    data = event.data
    if event.event == "progress":
        p = data.get("progress") or {}
        return (
            f"{data.get('status', '?')}  epoch {p.get('epoch', 0)}/{p.get('epochs', '?')}  "
            f"step {p.get('step', 0)}"
        )
    if event.event == "metrics":
        parts, last = [], (0, 0)
        for s in event.series:
            if s.steps:
                last = max(last, (s.steps[-1], s.epochs[-1]))
                parts.append(f"{s.name}={num(s.values[-1])}")
        return f"metrics  step {last[0]} (epoch {last[1]})  " + "  ".join(parts)
    if (job := event.job) is not None:
        final = {k: v for k, v in job.final.items() if k != "epoch"}
        metrics = "  ".join(f"{k}={num(v)}" for k, v in sorted(final.items()))
        return f"end  {job.status}  {metrics}".rstrip()
    return f"{event.event}  {json.dumps(event.data)}"


# --- commands ---------------------------------------------------------------------------


def follow(client: Client, args: argparse.Namespace, out: Console) -> int:
    args.watching = args.id
    final: Job | None = None
    for event in client.events(args.id, interval=args.interval):
        if args.json:  # one object per line, the data as the API sent it
            line = {"event": event.event, "id": event.id, "data": event.data}
            out.file.write(json.dumps(line, allow_nan=False) + "\n")
            out.file.flush()
        else:
            out.print(event_line(event), markup=False)
        final = event.job or final
    if final is None:
        raise RuntimeError(f"the events of job {args.id} ended without the job")
    if not args.json and final.error:
        error = final.error
        out.print(f"error: {error.get('type', '')}: {error.get('message', '')}", markup=False)
    return exit_status(final)


def wait(client: Client, args: argparse.Namespace, out: Console) -> int:
    args.watching = args.id
    job = watch(client, args.id, out, bar=not args.json, interval=args.interval)
    if args.json:
        print_json(out, job)
    else:
        print_job(out, job)
    return exit_status(job)


def interruptible(command: Command) -> Command:
    """Ctrl-C stops the watching, not the job: a note on stderr instead of a traceback. The
    command sets `args.watching` to the job's id once there is one to watch."""

    def run(client: Client, args: argparse.Namespace, out: Console) -> int:
        args.watching = None
        try:
            return command(client, args, out)
        except KeyboardInterrupt:
            if (job_id := args.watching) is not None:
                note = (
                    f"stopped watching job {job_id}; it goes on (epochal cancel {job_id} stops it)"
                )
            else:
                note = "interrupted before a job id came back (epochal list shows what was queued)"
            console(stderr=True).print(note, markup=False)
            return Exit.INTERRUPTED

    return run


def interval_arg(text: str) -> float:
    value = float(text)
    if not 0.1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"expected seconds from 0.1 to 10; received {text}")
    return value


def register(sub: Any) -> None:
    sp = add_command(
        sub,
        "follow",
        interruptible(follow),
        "a job's live events until it ends (exit 1 unless it succeeds)",
    )
    sp.add_argument("id")
    sp.add_argument(
        "--interval", type=interval_arg, default=1.0, help="the server's seconds between polls"
    )
    sp = add_command(
        sub, "wait", interruptible(wait), "wait for a job to end: exit 0 if it succeeded, else 1"
    )
    sp.add_argument("id")
    sp.add_argument(
        "--interval", type=interval_arg, default=1.0, help="the server's seconds between polls"
    )
