"""`epochal metrics`: a job's metric series as a table, CSV or JSON, on stdout or in a file.

CSV is long: one row per point, `series,step,epoch,value` (with `min,max` when the series were
downsampled with --max-points). JSON is the API's answer, `{"job_id", "series": [...]}`. NaN and
infinities are written as the API writes them: NaN, Infinity, -Infinity.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from epochal_client import Client, Series
from epochal_client.cli.base import add_command
from epochal_client.cli.output import api_float, plain, table

FORMATS = ("table", "csv", "json")


def to_csv(series: list[Series]) -> str:
    ranged = any(s.min is not None for s in series)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["series", "step", "epoch", "value", *(["min", "max"] if ranged else [])])
    for s in series:
        for i, (step, epoch, value) in enumerate(zip(s.steps, s.epochs, s.values, strict=True)):
            row = [s.name, step, epoch, _cell(value)]
            if ranged:
                row += [_cell(s.min[i]) if s.min else "", _cell(s.max[i]) if s.max else ""]
            writer.writerow(row)
    return buffer.getvalue()


def _cell(value: float | None) -> str:
    out = api_float(value)
    return "" if out is None else repr(out) if isinstance(out, float) else out


def to_json(job_id: str, series: list[Series]) -> str:
    body = {"job_id": job_id, "series": [s.model_dump(exclude_none=True) for s in series]}
    return json.dumps(plain(body), indent=2, allow_nan=False) + "\n"


def _summary(job_id: str, series: list[Series], out: Console) -> None:
    if not series:
        out.print(f"job {job_id} has no metrics yet")
        return
    rows = [
        (s.name, len(s.values), s.epochs[-1], s.steps[-1], s.values[-1], _finite_min(s.values))
        for s in series
    ]
    out.print(table(f"job {job_id}", ["series", "points", "epoch", "step", "last", "min"], rows))


def _finite_min(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else None


def _format(args: argparse.Namespace) -> str:
    """--format; else --json; else the output file's extension; else a table."""
    if args.format is not None:
        return args.format
    if args.json:
        return "json"
    if args.output is not None and args.output != "-":
        suffix = Path(args.output).suffix.lower().lstrip(".")
        if suffix in ("csv", "json"):
            return suffix
        raise ValueError(
            f"--output {args.output}: name the format with --format csv|json "
            "(or give the file a .csv or .json name)"
        )
    return "table"


def metrics(client: Client, args: argparse.Namespace, out: Console) -> int:
    fmt = _format(args)  # before the request: a usage error needs no server
    if args.format == "table" and args.output not in (None, "-"):
        raise ValueError("--output takes --format csv or json; a table is for the terminal")
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    series = client.metrics(
        args.id, names=names, since_step=args.since_step, max_points=args.max_points
    )
    if fmt == "table":
        _summary(args.id, series, out)
        return 0
    text = to_csv(series) if fmt == "csv" else to_json(args.id, series)
    if args.output in (None, "-"):
        out.file.write(text)
        out.file.flush()
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def register(sub: Any) -> None:
    sp = add_command(sub, "metrics", metrics, "a job's metric series: a summary, CSV or JSON")
    sp.add_argument("id")
    sp.add_argument("--names", default=None, help="comma-separated series names")
    sp.add_argument("--max-points", type=int, default=None, help="downsample to N points")
    sp.add_argument("--since-step", type=int, default=None, help="only points after this step")
    sp.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="table (the last value of each series), csv (series,step,epoch,value: one row "
        "per point) or json (the API's series); default: table, or the -o file's extension",
    )
    sp.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write there (default stdout)"
    )
