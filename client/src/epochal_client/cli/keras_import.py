"""`epochal from-keras model.json`: the JobSpec equivalent to a Keras 3 model (the file that
`model.to_json()` wrote), printed as YAML (or written with -o), or submitted with --submit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from epochal_client import Client
from epochal_client.cli.base import add_command
from epochal_client.cli.output import print_json


def _spec_text(spec: dict[str, Any], path: str | None) -> str:
    """YAML, or JSON for a .json file."""
    if path and Path(path).suffix.lower() == ".json":
        return json.dumps(spec, indent=2) + "\n"
    return yaml.safe_dump(spec, sort_keys=False)


def from_keras(client: Client, args: argparse.Namespace, out: Console) -> int:
    spec = client.from_keras(args.model, dataset=args.dataset, compile=args.compile, fit=args.fit)
    if args.output:
        Path(args.output).write_text(_spec_text(spec, args.output), encoding="utf-8")
    if args.submit:
        job = client.submit(spec)
        if args.json:
            print_json(out, job)
        else:
            out.print(job.id)
        return 0
    if args.json:
        print_json(out, spec)
    elif not args.output:
        out.file.write(_spec_text(spec, None))
    else:
        out.print(f"wrote {args.output}; submit it with: epochal submit {args.output}")
    return 0


def register(sub: Any) -> None:
    sp = add_command(
        sub,
        "from-keras",
        from_keras,
        "the job spec of a Keras 3 model (what model.to_json() wrote); --submit queues it",
    )
    sp.add_argument("model", help="a .json file of what Keras's model.to_json() returns")
    sp.add_argument(
        "--dataset", required=True, help="the data set to train on (a name or an upload's id)"
    )
    sp.add_argument(
        "--compile",
        metavar="FILE",
        help="a .json file of model.get_compile_config() or {optimizer, loss, metrics} "
        "(default: the compile config in the model's JSON)",
    )
    sp.add_argument(
        "--fit",
        metavar="FILE",
        help="a .json file of fit's arguments: batch_size, epochs, validation_split, shuffle, "
        'callbacks ({"class_name": "EarlyStopping", "config": {...}})',
    )
    sp.add_argument("-o", "--output", metavar="FILE", help="write the spec here (.yaml or .json)")
    sp.add_argument("--submit", action="store_true", help="submit the spec; print the job's id")
