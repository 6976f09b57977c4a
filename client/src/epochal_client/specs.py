"""Spec files: a job's or a sweep's spec read from YAML or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A job or sweep spec from a .yaml/.yml or .json file."""
    p = Path(path)
    text = p.read_text()
    if p.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(text)
    elif p.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"{p}: expected a .yaml, .yml or .json file; received {p.suffix!r}")
    if not isinstance(data, dict):
        raise ValueError(
            f"{p}: expected a mapping at the top level; received {type(data).__name__}"
        )
    return data
