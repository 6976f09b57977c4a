"""`epochal datasets upload | list | show | delete`: uploaded data sets (and the built-ins)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from epochal_client import Client, Dataset, EpochalAPIError
from epochal_client.cli.base import Exit, add_command
from epochal_client.cli.output import console, num, print_json, table


def _shape(ds: Dataset) -> str:
    return "x".join(map(str, ds.feature_shape))


def _print_dataset(out: Console, ds: Dataset) -> None:
    out.print(f"{ds.id}  {ds.name}  ({ds.source}, {ds.task})", markup=False)
    lines: list[tuple[str, Any]] = [
        ("description", ds.description),
        ("rows", ds.samples),
        ("feature shape", _shape(ds)),
        ("classes", ", ".join(map(str, ds.classes)) if ds.classes else ds.num_classes),
    ]
    if ds.columns:
        lines.append(("columns", ", ".join(ds.columns)))
    if ds.features and ds.features != ds.columns:
        lines.append(("features", ", ".join(ds.features)))
    for key in ("target", "format", "size_bytes", "sha256", "created_at"):
        if (value := getattr(ds, key)) is not None:
            lines.append((key.replace("_", " "), value))
    if ds.options:
        lines.append(("options", ", ".join(ds.options)))
    for key, value in lines:
        out.print(f"  {key}: {num(value)}", markup=False)


def _find(client: Client, name: str) -> Dataset:
    """A data set by its id or built-in name, else the one upload shown under that name."""
    try:
        return client.dataset(name)
    except EpochalAPIError as e:
        if e.status != 404:
            raise
        named = [d for d in client.datasets() if d.source == "upload" and d.name == name]
        if len(named) != 1:
            if named:
                e.detail += f"; {len(named)} uploads are named {name!r}: " + ", ".join(
                    d.id for d in named
                )
            raise
        return named[0]


def upload(client: Client, args: argparse.Namespace, out: Console) -> int:
    path = Path(args.file)
    if not path.is_file():
        console(stderr=True).print(f"error: {path}: no such file", markup=False)
        return Exit.USAGE
    options = {"name": args.name, "target": args.target, "task": args.task, "format": args.format}
    err = console(stderr=True)
    if err.is_terminal:  # a byte bar on the terminal; none in a pipe or a log
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(f"uploading {path.name}", total=path.stat().st_size)

            def show(sent: int, total: int) -> None:
                bar.update(task, completed=sent, total=total)

            ds = client.upload_dataset(path, on_progress=show, **options)
    else:
        ds = client.upload_dataset(path, **options)
    if args.json:
        print_json(out, ds)
    else:
        _print_dataset(out, ds)
    return Exit.OK


def list_datasets(client: Client, args: argparse.Namespace, out: Console) -> int:
    found = client.datasets()
    if args.json:
        print_json(out, found)
        return Exit.OK
    rows = [(d.id, d.name, d.source, d.task, d.samples, _shape(d), d.num_classes) for d in found]
    columns = ["id", "name", "source", "task", "rows", "features", "classes"]
    out.print(table(f"{len(rows)} data sets", columns, rows))
    return Exit.OK


def show(client: Client, args: argparse.Namespace, out: Console) -> int:
    ds = _find(client, args.name)
    if args.json:
        print_json(out, ds)
    else:
        _print_dataset(out, ds)
    return Exit.OK


def delete(client: Client, args: argparse.Namespace, out: Console) -> int:
    ds = _find(client, args.name)
    client.delete_dataset(ds.id)
    if args.json:
        print_json(out, {"id": ds.id, "name": ds.name, "deleted": True})
    else:
        out.print(f"{ds.id}  {ds.name}  deleted", markup=False)
    return Exit.OK


def register(sub: Any) -> None:
    help_ = "upload, list, show and delete data sets"
    verbs = sub.add_parser("datasets", help=help_, description=help_).add_subparsers(
        dest="datasets_command", required=True, metavar="VERB"
    )
    sp = add_command(verbs, "upload", upload, "upload a CSV, NPZ or Parquet file")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--name", default=None, help="a name to show (default: the file's stem)")
    sp.add_argument("--target", default=None, help="CSV, Parquet: the column to predict")
    sp.add_argument(
        "--task",
        choices=["classification", "regression"],
        default=None,
        help="default: classification for text or few integer targets",
    )
    sp.add_argument(
        "--format",
        choices=["csv", "npz", "parquet"],
        default=None,
        help="default: told by the file's first bytes",
    )
    add_command(verbs, "list", list_datasets, "the built-ins, then the uploads (newest first)")
    add_command(verbs, "show", show, "one data set: columns, features, classes").add_argument(
        "name", metavar="NAME", help="a built-in's name, an upload's id or its name"
    )
    add_command(verbs, "delete", delete, "delete an upload").add_argument(
        "name", metavar="NAME", help="the upload's id or name"
    )
