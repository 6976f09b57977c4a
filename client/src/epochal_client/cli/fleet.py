"""`epochal workers | queues`: the live fleet and the queues' depths, as `epochal_client.cli.jobs` does
for jobs."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from epochal_client import Client, Worker
from epochal_client.cli.base import add_command
from epochal_client.cli.output import print_json, table


def device(worker: Worker) -> str:
    d = worker.device
    if d.type != "cuda":
        return d.type
    memory = f", {d.gpu_memory_bytes / 2**30:.0f} GiB" if d.gpu_memory_bytes else ""
    count = f"{d.gpu_count} x " if d.gpu_count > 1 else ""
    return f"cuda: {count}{d.gpu_name or 'GPU'}{memory}"


def _ago(when: datetime) -> str:
    return f"{max(0.0, (datetime.now(UTC) - when).total_seconds()):.0f}s ago"


def workers(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.json:
        print_json(out, client.workers())
        return 0
    rows = [
        (
            w.id,
            ",".join(w.queues),
            device(w),
            f"{w.running}/{w.concurrency}",
            " ".join(w.running_jobs) or "-",
            _ago(w.last_heartbeat),
        )
        for w in client.workers()
    ]
    columns = ["worker", "queues", "device", "busy", "running jobs", "heartbeat"]
    out.print(table(f"{len(rows)} live workers", columns, rows))
    return 0


def queues(client: Client, args: argparse.Namespace, out: Console) -> int:
    if args.json:
        print_json(out, client.queues())
        return 0
    rows = []
    warnings = []
    for q in client.queues():
        oldest = f"{q.oldest.id} ({q.oldest.waiting_seconds:.0f}s)" if q.oldest else "-"
        rows.append((q.name, q.queued, q.broker_messages, oldest, q.workers, q.gpu_workers))
        if q.queued and not q.workers:
            warnings.append(f"warning: no live worker serves queue {q.name!r}")
    columns = ["queue", "queued", "in broker", "oldest waiting", "workers", "gpu workers"]
    out.print(table("queues", columns, rows))
    for line in warnings:
        out.print(line)
    return 0


def register(sub: Any) -> None:
    add_command(sub, "workers", workers, "the live workers: queues, device, running jobs")
    add_command(sub, "queues", queues, "each queue's depth, oldest waiting job and workers")
