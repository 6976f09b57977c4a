"""A fresh venv holding only the light client, made offline (see test_light_install.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str]) -> set[str]:
    """The distributions that `requirements` pull in, as installed in this venv (canonical names)."""
    found: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonical(requirement.name)
        extras = {canonical(e) for e in requirement.extras}
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in found:
            continue
        found.add(key)
        for r in metadata.requires(requirement.name) or []:
            todo += [(Requirement(r), e) for e in ["", *extras]]
    return {key.partition("[")[0] for key in found}


def clean_env() -> dict[str, str]:
    """This environment without PYTHON* and EPOCHAL_* variables: a checkout on PYTHONPATH would
    make pip see the client as already installed, and the child import it instead."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EPOCHAL_"))}


def fresh_client_venv(tmp_path: Path) -> Path:
    """Build the client as a wheel from client/ (this venv's setuptools, no build isolation) and
    install it with `--no-deps --no-index` into a fresh venv (no site packages); its python."""
    wheels, venv, source = tmp_path / "wheels", tmp_path / "fresh", tmp_path / "client"
    # A copy, since a build leaves build/ and *.egg-info beside the sources.
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run = {"capture_output": True, "text": True, "timeout": 300, "check": False}
    wheel_options = ["--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels)]
    built = subprocess.run([*pip, "wheel", *wheel_options, str(source)], env=clean_env(), **run)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("epochal_client-*.whl")
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **run)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        env=clean_env(),
        **run,
    )
    assert installed.returncode == 0, installed.stderr
    return python


def client_requirements() -> list[str]:
    return tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]


def light_site(tmp_path: Path) -> Path:
    """A folder holding links to the installed files of the client's requirements' closure, and
    nothing else: on PYTHONPATH, the fresh venv's python finds these and no torch, celery, ..."""
    site = tmp_path / "light-site"
    site.mkdir()
    for name in closure(client_requirements()):
        distribution = metadata.distribution(name)
        for top in {Path(f).parts[0] for f in distribution.files or []} - {".."}:
            if not (site / top).exists():
                (site / top).symlink_to(distribution.locate_file(top))
    return site
