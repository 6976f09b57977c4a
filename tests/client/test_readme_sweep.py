"""The README's sweep script runs from a fresh venv that holds only `pip install ./client`, against
a server started from the repository (issue 13).

The script is the README's own (the ```python block of "Sweeps from the client and CLI"), not a
copy. The venv is made offline as in test_light_install.py; its python sees the client's
requirements (httpx, pydantic, ...) through a folder of links to their installed files and nothing
else, so torch and the server's packages cannot be imported on the way. The server is the
package's real API and worker (tests/client/conftest.py), reached through EPOCHAL_URL.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.client.light_venv import ROOT, clean_env, fresh_client_venv, light_site
from tests.readme import code_blocks

pytestmark = pytest.mark.e2e

SECTION = "Sweeps from the client and CLI"


def readme_sweep_script() -> str:
    (script,) = [body for heading, body in code_blocks("python") if heading == SECTION]
    return script


def test_the_readme_sweep_script_runs_from_the_light_client_alone(url: str, tmp_path: Path) -> None:
    script = readme_sweep_script()
    (sweep_file,) = re.findall(r'c\.sweep\("([^"]+)"\)', script)
    sweep = yaml.safe_load((ROOT / sweep_file).read_text())
    paths = set(sweep["parameters"])
    grid = 1
    for parameter in sweep["parameters"].values():
        grid *= len(parameter["values"])
    (tmp_path / "sweep.py").write_text(script)
    python = fresh_client_venv(tmp_path)
    env = {**clean_env(), "PYTHONPATH": str(light_site(tmp_path)), "EPOCHAL_URL": url}
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "check": False}

    no_torch = subprocess.run([str(python), "-c", "import torch"], timeout=60, **run)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    done = subprocess.run([str(python), str(tmp_path / "sweep.py")], timeout=600, **run)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()

    # As the README says: "n of m" progress lines, ending with every trial done, then the five
    # best trials (rank, value, params), then the first one's params again.
    progress = [line for line in lines if re.fullmatch(r"\d+ of \d+", line)]
    assert progress and progress[-1] == f"{grid} of {grid}", done.stdout
    board = lines[len(progress) :]
    assert len(board) == 6, done.stdout
    ranked = [line.split(" ", 2) for line in board[:5]]
    assert [int(rank) for rank, _, _ in ranked] == [1, 2, 3, 4, 5]
    values = [float(value) for _, value, _ in ranked]
    assert values == sorted(values, reverse=True) and 0.8 < values[0] <= 1.0, values
    params = [ast.literal_eval(p) for _, _, p in ranked]
    assert all(set(p) == paths for p in params), params
    assert ast.literal_eval(board[5]) == params[0]
