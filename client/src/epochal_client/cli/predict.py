"""`epochal download | predict | evaluate`: a trained model's file, its predictions on a file
of rows (through the API, or offline from a downloaded .onnx file), and its metrics on a data
set.

Predictions are written as CSV, one row per input: `label` (and `class` for a labelled upload)
with one `p_<class>` column per class for a classifier (`score_<i>` when it was trained without
probabilities), `value` (or `value_<i>`) for a regression. The API's answer and the offline one
share the shape, classes included (kept with the model, so the data set may be deleted), and
`write_predictions` formats both. Both read the file of rows with `epochal_client.row_files`.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from epochal_client import Client, Prediction
from epochal_client.cli.base import Exit, add_command
from epochal_client.cli.output import console, print_json, table
from epochal_client.extras import PREDICT_INSTALL
from epochal_client.row_files import read_row_file

SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}

# --- download ---------------------------------------------------------------------------


def default_name(job_id: str, format: str, checkpoint: str | None) -> str:
    """`<job id>.<suffix>`, or `<job id>-<checkpoint>.safetensors` for a checkpoint."""
    stem = f"{job_id}-{checkpoint}" if checkpoint else job_id
    return stem + SUFFIXES.get(format, f".{format}")


def download(client: Client, args: argparse.Namespace, out: Console) -> int:
    dest = Path(args.output or default_name(args.job, args.format, args.checkpoint))
    if dest.is_dir():
        dest = dest / default_name(args.job, args.format, args.checkpoint)
    if dest.exists() and not args.force:
        return _usage(f"{dest} exists; pass --force to overwrite it")
    path = client.download_model(args.job, dest, format=args.format, checkpoint=args.checkpoint)
    size = path.stat().st_size
    if args.json:
        print_json(
            out,
            {
                "job_id": args.job,
                "format": args.format,
                "checkpoint": args.checkpoint,
                "path": str(path),
                "bytes": size,
            },
        )
    else:
        out.print(f"{path}  {size:,} bytes", markup=False)
    return Exit.OK


# --- predict ----------------------------------------------------------------------------


def write_predictions(
    outputs: Sequence[dict[str, Any]], f: IO[str], classes: Sequence[Any] | None = None
) -> None:
    """One CSV row per output: `label`, `class` when the model names them, then `p_<class>`
    per class (`p_<i>` without the class names), `score_<i>`, or `value` / `value_<i>`."""
    columns: list[str] = []
    for key in ("label", "class"):
        if any(key in o for o in outputs):
            columns.append(key)
    for key, prefix in (("probabilities", "p_"), ("scores", "score_"), ("value", "value_")):
        width = max((len(_list(o[key])) for o in outputs if key in o), default=0)
        if not width:
            continue
        if key == "value" and not any(isinstance(o.get(key), list) for o in outputs):
            columns.append("value")
        elif key == "probabilities" and classes is not None and len(classes) == width:
            columns += [f"p_{c}" for c in classes]
        else:
            columns += [f"{prefix}{i}" for i in range(width)]
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(columns)
    for o in outputs:
        row = [o.get(key, "") for key in ("label", "class") if key in columns]
        for key in ("probabilities", "scores", "value"):
            if key in o:
                row += _list(o[key])
        writer.writerow(row)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def predict(client: Client, args: argparse.Namespace, out: Console) -> int:
    model = Path(args.job)
    if model.suffix.lower() == ".onnx" and model.is_file():
        try:  # the `predict` extra: numpy and onnxruntime, imported only here
            from epochal_client import offline
        except ImportError:
            return _usage(f"offline prediction needs `{PREDICT_INSTALL}`")
        answer = Prediction.model_validate(offline.predict_file(model, args.file, args.array))
    else:
        answer = client.prediction(args.job, **read_row_file(args.file, args.array))
    outputs = answer.outputs
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            write_predictions(outputs, f, answer.classes)
    if args.json:
        print_json(out, answer)
    elif args.output:
        out.print(f"{len(outputs)} predictions written to {args.output}", markup=False)
    else:
        text = io.StringIO()
        write_predictions(outputs, text, answer.classes)
        out.file.write(text.getvalue())
        out.file.flush()
    return Exit.OK


# --- evaluate ---------------------------------------------------------------------------


def evaluate(client: Client, args: argparse.Namespace, out: Console) -> int:
    result = client.evaluate(args.job, args.dataset)
    if args.json:
        print_json(out, result)
        return Exit.OK
    out.print(f"job {result.job_id} on {result.dataset} ({result.samples:,} samples)", markup=False)
    out.print(table("", ["metric", "value"], sorted(result.metrics.items())))
    return Exit.OK


def _usage(message: str) -> int:
    console(stderr=True).print(f"error: {message}", markup=False)
    return Exit.USAGE


# --- wiring -----------------------------------------------------------------------------


def register(sub: Any) -> None:
    sp = add_command(sub, "download", download, "save a succeeded job's model file")
    sp.add_argument("job", metavar="JOB")
    sp.add_argument(
        "--format", choices=list(SUFFIXES), default="safetensors", help="default: safetensors"
    )
    sp.add_argument(
        "--checkpoint",
        choices=["best", "last"],
        default=None,
        help="a checkpoint's weights instead of the final model (safetensors only)",
    )
    sp.add_argument(
        "-o", "--output", default=None, metavar="PATH", help="default: JOB.<format's suffix>"
    )
    sp.add_argument("--force", action="store_true", help="overwrite PATH if it exists")

    sp = add_command(sub, "predict", predict, "predictions for a file of rows, written as CSV")
    sp.add_argument(
        "job", metavar="JOB", help="a job id, or a downloaded .onnx file (offline, no server)"
    )
    sp.add_argument(
        "file",
        metavar="FILE",
        help=".csv (rows under the training header), .json (records or inputs) or .npz",
    )
    sp.add_argument("-o", "--output", default=None, metavar="PATH", help="default: stdout")
    sp.add_argument("--array", default=None, help=".npz: the array to read (default: its only one)")

    sp = add_command(sub, "evaluate", evaluate, "a succeeded job's metrics on a data set")
    sp.add_argument("job", metavar="JOB")
    sp.add_argument("dataset", metavar="DATASET", help="a built-in's name or an upload's id")
