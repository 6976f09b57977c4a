"""`pip install ./client` gives a laptop the client without the server's stack (issue 13).

The test must run offline, so it cannot let pip fetch httpx and pydantic from an index into a
fresh venv. It proves the same thing in three steps that need no network:
1. the client is built as a wheel from client/ (this venv's setuptools, no build isolation) and
   installed with `--no-deps --no-index` into a fresh venv (`python -m venv`, no site packages):
   the fresh venv then holds that one distribution, with its declared requirements;
2. the closure of those requirements (extras and markers followed) is resolved against the real
   metadata of the distributions installed in this venv, which holds torch, celery and
   SQLAlchemy: if any requirement of the client led to them, this closure would contain them;
3. the fresh venv's Python imports the client with only that closure on its path (this venv's
   site-packages folder, whose .pth files, such as the editable install of the server, are not
   read from PYTHONPATH), and no server package or heavy library is loaded on the way.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.client.light_venv import ROOT, canonical, clean_env, closure, fresh_client_venv

SERVER_ONLY = {"torch", "celery", "sqlalchemy", "alembic", "fastapi", "onnx", "pyarrow", "epochal"}


CHILD = """
import importlib.metadata as m, json, sys, sysconfig
purelib = sysconfig.get_paths()["purelib"]
import epochal_client
print(json.dumps({
    "installed": sorted(d.metadata["Name"] for d in m.distributions(path=[purelib])),
    "requires": m.requires("epochal-client"),
    "file": epochal_client.__file__,
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
}))
"""


def test_the_client_installs_alone_and_pulls_in_nothing_of_the_server(tmp_path: Path) -> None:
    python = fresh_client_venv(tmp_path)
    venv = python.parents[1]
    env = clean_env()
    run = {"capture_output": True, "text": True, "timeout": 300, "check": False, "env": env}
    this_site = str(Path(metadata.distribution("httpx").locate_file("")))
    run["env"] = {**env, "PYTHONPATH": this_site}
    child = subprocess.run([str(python), "-c", CHILD], cwd=tmp_path, **run)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)

    assert report["installed"] == ["epochal-client"]
    assert Path(report["file"]).is_relative_to(venv)  # the installed copy, not the checkout
    needed = closure(report["requires"])
    assert {"httpx", "pydantic"} <= needed
    assert needed.isdisjoint(SERVER_ONLY), needed & SERVER_ONLY
    assert set(report["modules"]).isdisjoint(
        {"torch", "celery", "sqlalchemy", "fastapi", "numpy", "core", "api", "worker", "cli"}
    )


def test_the_closure_finds_the_server_stack_where_it_is() -> None:
    """The check can fail: the server distribution's own requirements do lead to torch."""
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "epochal-client" in {canonical(Requirement(r).name) for r in server}
    # The client itself may not be installed in this venv yet (a checkout on PYTHONPATH).
    needed = closure([r for r in server if not r.startswith("epochal-client")])
    assert {"torch", "celery", "sqlalchemy"} <= needed
