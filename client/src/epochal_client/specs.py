"""Spec files: a job's or a sweep's spec read from YAML or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A job or sweep spec from a .yaml/.yml or .json file. ValueError for a file that does
    not parse, naming the file and where (line and column) the problem is."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ValueError(f"{p}: expected a .yaml, .yml or .json file; received {p.suffix!r}")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML: {_yaml_problem(e)}") from e
    if not isinstance(data, dict):
        raise ValueError(
            f"{p}: expected a mapping at the top level; received {type(data).__name__}"
        )
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's problem and its position (counted from 1), on one line."""
    if not isinstance(e, yaml.MarkedYAMLError) or e.problem_mark is None:
        return str(e).replace("\n", " ")
    mark = e.problem_mark
    what = ": ".join(x for x in (e.context, e.problem) if x)
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})"
