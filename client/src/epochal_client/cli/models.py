"""`epochal download | predict | evaluate`: a trained model's file, its predictions on a file
of rows (through the API, or offline from a downloaded .onnx file), and its metrics on a data
set.

Predictions are written as CSV, one row per input: `label` (and `class` for a labelled upload)
with one `p_<class>` column per class for a classifier (`score_<i>` when it was trained without
probabilities), `value` (or `value_<i>`) for a regression. The API's answer and the offline one
share the shape, and `write_predictions` formats both.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from epochal_client import Client, EpochalAPIError
from epochal_client.cli.base import Exit, add_command
from epochal_client.cli.output import console, print_json, table

SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
ROW_SUFFIXES = (".csv", ".json", ".npz")
OFFLINE_EXTRA = "offline prediction needs `pip install 'epochal-client[predict]'`"
NPZ_EXTRA = "reading .npz inputs needs numpy: `pip install 'epochal-client[predict]'`"


class UsageError(ValueError):
    """A bad argument or input file: exit 2 with its message."""


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


def read_rows(path: Path, array: str | None = None) -> dict[str, Any]:
    """The `Client.predict` argument for a file: {"csv": path} for a .csv, {"records": [...]}
    or {"inputs": [...]} for a .json, {"inputs": array} for a .npz (its single array, or the
    one named `array`)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return {"csv": path}
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".npz":
        return {"inputs": _npz_array(path, array)}
    raise UsageError(f"{path}: expected a {', '.join(ROW_SUFFIXES)} file; received {suffix!r}")


def _json_rows(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON: {e}") from None
    if isinstance(data, dict) and len(data) == 1 and set(data) <= {"records", "inputs"}:
        return data
    if isinstance(data, list):
        every_record = data and all(isinstance(r, dict) for r in data)
        return {"records": data} if every_record else {"inputs": data}
    raise UsageError(
        f'{path}: expected a list of records, or {{"records": [...]}} or '
        f'{{"inputs": [...]}}; received {type(data).__name__}'
        + (f" with keys {sorted(data)}" if isinstance(data, dict) else "")
    )


def _npz_array(path: Path, name: str | None) -> Any:
    try:
        import numpy as np  # the `predict` extra: the light client does not need numpy
    except ImportError:
        raise UsageError(NPZ_EXTRA) from None
    with np.load(path, allow_pickle=False) as arrays:
        names = list(arrays.files)
        if name is None and len(names) == 1:
            name = names[0]
        if name is None or name not in names:
            wanted = "pass --array NAME" if name is None else f"no array named {name!r}"
            raise UsageError(f"{path}: {wanted}; it holds {', '.join(names) or 'no arrays'}")
        return arrays[name]


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


def _classes(client: Client, job_id: str) -> list[Any] | None:
    """The class labels of the job's data set, while it exists (an upload's)."""
    name = client.get(job_id).spec.get("dataset", {}).get("name")
    try:
        return client.dataset(name).classes if name else None
    except EpochalAPIError:
        return None  # deleted since: the columns are named by class id


def _onnx_classes(model: Path) -> list[Any] | None:
    """The class labels in a downloaded ONNX file's `epochal.preprocessing` metadata."""
    import onnxruntime  # the `predict` extra, as for `offline`

    meta = onnxruntime.InferenceSession(str(model)).get_modelmeta().custom_metadata_map
    return json.loads(meta.get("epochal.preprocessing") or "{}").get("classes")


def predict(client: Client, args: argparse.Namespace, out: Console) -> int:
    model = Path(args.job)
    if model.suffix.lower() == ".onnx" and model.is_file():
        rows = Path(args.file)
        if not rows.is_file():
            return _usage(f"{rows}: no such file")
        try:  # the `predict` extra: numpy and onnxruntime, imported only here
            from epochal_client import offline

            answer = offline.predict_file(model, rows)
            classes = answer.get("classes") or _onnx_classes(model)
        except ImportError:
            return _usage(OFFLINE_EXTRA)
    else:
        answer = {
            "job_id": args.job,
            "outputs": client.predict(args.job, **read_rows(Path(args.file), args.array)),
        }
        classes = _classes(client, args.job)
    outputs = answer["outputs"]
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            write_predictions(outputs, f, classes)
    if args.json:
        print_json(out, {"job_id": answer["job_id"], "outputs": outputs})
    elif args.output:
        out.print(f"{len(outputs)} predictions written to {args.output}", markup=False)
    else:
        text = io.StringIO()
        write_predictions(outputs, text, classes)
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
    sp.add_argument("--array", default=None, help=".npz: the array to send (default: its only one)")

    sp = add_command(sub, "evaluate", evaluate, "a succeeded job's metrics on a data set")
    sp.add_argument("job", metavar="JOB")
    sp.add_argument("dataset", metavar="DATASET", help="a built-in's name or an upload's id")
