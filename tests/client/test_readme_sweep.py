"""The README's sweep script, and its client script, run from a fresh venv that holds only
`pip install ./client`, against a server started from the repository (issue 13).

The scripts are the README's own (the ```python blocks of "Sweeps from the client and CLI" and
"Scripts: Python client and CLI"), not copies. The venv is made offline as in
test_light_install.py; its python sees the client's requirements (httpx, pydantic, ...) through a
folder of links to their installed files and nothing else, so torch and the server's packages
cannot be imported on the way. The server is the package's real API and worker
(tests/client/conftest.py), reached through EPOCHAL_URL.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.client.light_venv import ROOT, clean_env, fresh_client_venv, light_site
from tests.readme import code_blocks

pytestmark = pytest.mark.e2e

SWEEP_SECTION = "Sweeps from the client and CLI"
CLIENT_SECTION = "Scripts: Python client and CLI"
DATA_SECTION = "Data sets and models from the client"


def readme_script(section: str) -> str:
    (script,) = [body for heading, body in code_blocks("python") if heading == section]
    return script


@pytest.fixture(scope="module")
def light_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh venv's python with only the client installed, and its PYTHONPATH (the client's
    requirements, nothing else); importing torch fails there."""
    tmp_path = tmp_path_factory.mktemp("light")
    python, site = fresh_client_venv(tmp_path), light_site(tmp_path)
    env = {**clean_env(), "PYTHONPATH": str(site)}
    no_torch = subprocess.run(
        [str(python), "-c", "import torch"], env=env, capture_output=True, text=True, timeout=60
    )
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    return python, site


def run_readme_script(
    section: str, light_python: tuple[Path, Path], url: str, tmp_path: Path, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """The README's script, from the checkout's root (its paths are relative to it), or from
    `cwd` where it writes files."""
    python, site = light_python
    (tmp_path / "script.py").write_text(readme_script(section))
    env = {**clean_env(), "PYTHONPATH": str(site), "EPOCHAL_URL": url}
    done = subprocess.run(
        [str(python), str(tmp_path / "script.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_readme_sweep_script_runs_from_the_light_client_alone(
    light_python: tuple[Path, Path], url: str, tmp_path: Path
) -> None:
    (sweep_file,) = re.findall(r'c\.sweep\("([^"]+)"\)', readme_script(SWEEP_SECTION))
    sweep = yaml.safe_load((ROOT / sweep_file).read_text())
    paths = set(sweep["parameters"])
    grid = 1
    for parameter in sweep["parameters"].values():
        grid *= len(parameter["values"])
    done = run_readme_script(SWEEP_SECTION, light_python, url, tmp_path)
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


def test_the_readme_client_script_runs_from_the_light_client_alone(
    light_python: tuple[Path, Path], url: str, tmp_path: Path
) -> None:
    done = run_readme_script(CLIENT_SECTION, light_python, url, tmp_path)
    status, accuracy = done.stdout.split()  # print(job.status, job.final["val_accuracy"])
    assert status == "succeeded" and 0.8 < float(accuracy) <= 1.0, done.stdout


def test_the_readme_data_script_runs_from_the_light_client_alone(
    light_python: tuple[Path, Path], url: str, tmp_path: Path
) -> None:
    """Upload, train, predict on a raw record, evaluate and download: the model file it saves
    lands in a folder of its own (with a link to examples/), not in the checkout."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    done = run_readme_script(DATA_SECTION, light_python, url, tmp_path, cwd=work)
    first, predicted, metrics = done.stdout.splitlines()
    ds_id, samples, columns, classes = re.fullmatch(
        r"(\S+) (\d+) (\[.*?\]) (\[.*\])", first
    ).groups()
    assert ds_id.startswith("ds_") and samples == "150", first
    assert ast.literal_eval(columns) == ["length", "width", "soil"]
    assert ast.literal_eval(classes) == ["setosa", "versicolor", "virginica"]
    assert predicted in {"setosa", "versicolor", "virginica"}
    assert {"loss", "accuracy"} <= set(ast.literal_eval(metrics)), metrics
    model = (work / "flowers-client.onnx").read_bytes()
    assert model[:1] == b"\x08" and len(model) > 1000  # an ONNX protobuf: ir_version first


def test_the_light_install_has_the_epochal_command_without_the_server_verbs(
    light_python: tuple[Path, Path], url: str
) -> None:
    """The light client's own `epochal`: the client's verbs reach the server; a server verb
    says how to install the server instead of argparse's list of choices."""
    python, site = light_python
    epochal = python.parent / "epochal"
    env = {**clean_env(), "PYTHONPATH": str(site), "EPOCHAL_URL": url}
    run = {"env": env, "capture_output": True, "text": True, "timeout": 60, "check": False}
    listed = subprocess.run([str(epochal), "list", "--limit", "1", "--json"], **run)
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)) == {"items", "next_cursor"}
    serve = subprocess.run([str(epochal), "serve"], **run)
    assert serve.returncode == 2
    assert "verb of the server" in serve.stderr and "pip install ./client ." in serve.stderr
