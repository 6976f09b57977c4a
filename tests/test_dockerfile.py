"""The image starts: what the Dockerfile copies is enough for every `epochal` process.

The files come from the Dockerfile's COPY lines (tests/dockerfile.py reads them as `docker build`
does, .dockerignore included), never from a list kept here. They are installed as the image
installs them (`pip install ./client .`, not editable) into a folder of their own, and a child Python
imports from that folder alone: this venv's editable install of Epochal (a finder on
sys.meta_path that maps api, core, cli, ... to a checkout) is taken out first, and the
repository is not on sys.path, so a module that the image lacks fails to import here too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

import migrations
from tests import dockerfile
from tests.dockerfile import NotInContext, Unsupported, image_files

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CLIENT_PROJECT = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
# The `epochal` command is the light client's; the server's verbs join it by an entry point.
ENTRY_POINTS = sorted(
    [
        *CLIENT_PROJECT["scripts"].values(),
        *PYPROJECT["project"]["entry-points"]["epochal.commands"].values(),
    ]
)  # epochal_client.cli:main, cli.main:register
# The server's packages, and the light client's (client/, distribution epochal-client, whose one
# package is named after it) that the image installs alongside.
CLIENT = CLIENT_PROJECT["name"]
PACKAGES = sorted(
    [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    + [CLIENT.replace("-", "_")]
)
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
PIP_INSTALL += ["--no-build-isolation"]  # this venv's setuptools; the test needs no network
# The dashboard's files are package data (pyproject's package-data), not modules: what the
# walk of imports cannot see. The page, its router, a page module and the vendored uPlot.
DASHBOARD_FILES = (
    "api/ui/static/index.html",
    "api/ui/static/app.js",
    "api/ui/static/lib/api.js",
    "api/ui/static/pages/jobs.js",
    "api/ui/static/vendor/uPlot.iife.min.js",
    "api/ui/static/vendor/uPlot.LICENSE",
)
SKIPPED = (  # run by alembic or `python -m`, never imported
    "migrations.env",
    "migrations.versions",
    "epochal_client.__main__",
)

# Runs in the child. argv: the install folder, then a JSON object of what to check.
CHILD = r"""
import importlib, json, pkgutil, sqlite3, sys
from pathlib import Path

site, todo = Path(sys.argv[1]), json.loads(sys.argv[2])

def editable(obj):
    return "__editable__" in (getattr(obj, "__module__", None) or "")

sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
sys.path[:] = [
    p for p in sys.path
    if p and "__editable__" not in p and Path(p).resolve() != Path.cwd()
    and not (  # the source tree, but not a virtual environment kept inside it (.venv)
        Path(p).resolve().is_relative_to(todo["repo"])
        and not Path(p).resolve().is_relative_to(Path(sys.prefix).resolve())
    )
]
sys.path.insert(0, str(site))
sys.path_importer_cache.clear()
errors = []

def attempt(what, call):
    try:
        return call()
    except BaseException as error:
        errors.append(f"{what}: {type(error).__name__}: {error}")

for entry in todo["entry_points"]:
    module, _, attr = entry.partition(":")
    imported = attempt(entry, lambda: importlib.import_module(module))
    if imported is not None and not callable(getattr(imported, attr, None)):
        errors.append(f"{entry}: no callable {attr}")

for name in todo["packages"]:
    package = attempt(name, lambda: importlib.import_module(name))
    if package is None:
        continue
    # A subpackage that fails to import is reported by attempt() below; walking on past it.
    for info in pkgutil.walk_packages(package.__path__, name + ".", onerror=lambda _: None):
        if not info.name.startswith(tuple(todo["skipped"])):
            attempt(info.name, lambda: importlib.import_module(info.name))

def verbs():  # what `epochal --help` offers in the image: the client's and the server's
    from epochal_client.cli.main import parser
    return sorted(next(a for a in parser()._actions if a.dest == "command").choices)

commands = attempt("epochal --help", verbs) or []
errors.extend(f"epochal lacks the verb {v!r}" for v in todo["verbs"] if v not in commands)

def upgrade():
    import migrations
    migrations.upgrade(todo["database_url"])
    with sqlite3.connect(todo["database"]) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchall()

revisions = attempt("epochal migrate", upgrade)

outside = sorted(
    f"{name} from {module.__file__}"
    for name, module in list(sys.modules.items())
    if name.split(".")[0] in todo["packages"]
    and getattr(module, "__file__", None)
    and not Path(module.__file__).resolve().is_relative_to(site.resolve())
)
imported = sorted(n for n in sys.modules if n.split(".")[0] in todo["packages"])
print(json.dumps({"errors": errors, "outside": outside, "revisions": revisions, "imported": imported}))
"""


def install_as_the_image_does(dockerfile_path: Path, context: Path, into: Path) -> Path:
    """Lay out what the COPY lines before `pip install .` copy, and install what that line names
    (the project and the light client); the site folder."""
    runs = [
        i
        for i in dockerfile.instructions(dockerfile_path.read_text())
        if i.keyword == "RUN" and re.search(r"\bpip install\b[^&;|]*\s\.(\s|$)", i.value)
    ]
    assert len(runs) == 1, "the Dockerfile should install the project once, with `pip install .`"
    root, site = into / "image", into / "site"
    dockerfile.lay_out(image_files(dockerfile_path, context, stop=runs[0].line), context, root)
    workdir = root / runs[0].workdir.lstrip("/")
    # The local paths that this `pip install` names (`./client .`), in one call as in the image.
    command = re.search(r"\bpip install\b([^&;|]*)", runs[0].value).group(1).split()
    sources = [str(workdir / arg) for arg in command if arg == "." or arg.startswith("./")]
    result = subprocess.run(
        [*PIP_INSTALL, "--target", str(site), *sources],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return site


def check_image(dockerfile_path: Path, context: Path, tmp: Path) -> dict[str, list]:
    site = install_as_the_image_does(dockerfile_path, context, tmp)
    database = tmp / "migrate.db"
    todo = {
        "repo": str(ROOT),
        "entry_points": ENTRY_POINTS,
        "packages": PACKAGES,
        "skipped": SKIPPED,
        "verbs": ["serve", "api", "worker", "migrate", "keys", "submit", "sweep"],
        "database": str(database),
        "database_url": f"sqlite:///{database}",
    }
    workdir = tmp / "elsewhere"  # not the image's /app: the console script runs from anywhere
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EPOCHAL_"))}
    env["EPOCHAL_BROKER_URL"] = "redis://redis:6379/0"  # as in docker-compose.yml; never reached
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(site), json.dumps(todo)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    report["top_level"] = sorted(p.name for p in site.iterdir() if not p.name.endswith("-info"))
    report["dashboard"] = sorted(p for p in DASHBOARD_FILES if (site / p).is_file())
    return report


def test_every_process_of_the_image_imports_and_migrates(tmp_path: Path) -> None:
    report = check_image(ROOT / "Dockerfile", ROOT, tmp_path)
    assert report["errors"] == [], "the image would not start:\n" + "\n".join(report["errors"])
    assert report["outside"] == [], "imported from outside the image's files"
    # What `epochal api`, `epochal worker` and `epochal migrate` load, found by the walk.
    assert {"cli.main", "api.app", "worker.main", "migrations"} <= set(report["imported"])
    assert "epochal_client.http" in report["imported"]  # the CLI's client, its own distribution
    # No generic top-level `client` in site-packages: the client's package has a name of its own.
    assert "client" not in report["top_level"]
    assert "epochal_client" in report["top_level"]
    head = ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()
    assert report["revisions"] == [[head]], "the image lacks migration scripts"
    assert report["dashboard"] == sorted(DASHBOARD_FILES), "the image lacks the dashboard's files"


def test_a_file_that_the_dockerfile_does_not_copy_fails_the_check(tmp_path: Path) -> None:
    """The check itself: drop one package from the COPY lines and the image no longer starts,
    although this venv's editable install would still import it."""
    text = (ROOT / "Dockerfile").read_text()
    without = re.sub(r"^COPY core \./core\n", "", text, flags=re.M)
    assert without != text, "the Dockerfile no longer copies core with `COPY core ./core`"
    (tmp_path / "Dockerfile").write_text(without)
    report = check_image(tmp_path / "Dockerfile", ROOT, tmp_path)
    assert any(e.startswith("cli.main:register: ModuleNotFoundError") for e in report["errors"])
    assert "core: ModuleNotFoundError: No module named 'core'" in report["errors"]
    assert "epochal migrate: ModuleNotFoundError: No module named 'core'" in report["errors"]


# The reader of COPY lines, on small contexts.


@pytest.fixture
def context(tmp_path: Path) -> Path:
    for name in ("a/x.py", "a/sub/y.py", "a/__pycache__/x.pyc", "b/z.py", "top.txt", "t.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("# caches\n**/__pycache__\n/b\n!b/z.py\n*.toml\n")
    return tmp_path


def copied(context: Path, text: str) -> dict[str, str]:
    (context / "Dockerfile").write_text(text)
    return image_files(context / "Dockerfile", context)


def test_dockerignore_with_double_stars_and_exceptions(context: Path) -> None:
    assert dockerfile.context_files(context) == {
        ".dockerignore",
        "a/x.py",
        "a/sub/y.py",
        "b/z.py",
        "top.txt",
    }


def test_a_folder_source_copies_its_contents(context: Path) -> None:
    assert copied(context, "FROM x\nWORKDIR /app\nCOPY ./a ./a\n") == {
        "/app/a/x.py": "a/x.py",
        "/app/a/sub/y.py": "a/sub/y.py",
    }
    # Two folders into one destination: their contents merge there, the folders are gone.
    assert set(copied(context, "FROM x\nWORKDIR /app\nCOPY a b ./\n")) == {
        "/app/x.py",
        "/app/sub/y.py",
        "/app/z.py",
    }


def test_files_wildcards_json_form_and_continuations(context: Path) -> None:
    text = 'FROM x\nWORKDIR /app\nWORKDIR src\nCOPY ["top.txt", "/srv/"]\nCOPY a/*.py \\\n  # note\n  ./\n'
    assert copied(context, text) == {"/srv/top.txt": "top.txt", "/app/src/x.py": "a/x.py"}
    assert copied(context, "FROM x\nCOPY --chown=1:1 /top.txt /etc/renamed\n") == {
        "/etc/renamed": "top.txt"
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("FROM x\nCOPY a/__pycache__ ./\n", NotInContext),  # excluded by .dockerignore
        ("FROM x\nCOPY t.toml ./\n", NotInContext),
        ("FROM x\nCOPY missing ./\n", NotInContext),
        ("FROM x\nCOPY a/x.py top.txt /dir\n", NotInContext),  # several sources, no trailing /
        ("FROM x\nCOPY --from=build /a ./\n", Unsupported),
        ("FROM x\nCOPY $SRC ./\n", Unsupported),
        ("FROM x AS a\nFROM y\nCOPY a ./\n", Unsupported),
    ],
    ids=["ignored", "ignored-glob", "missing", "no-slash", "from", "variable", "stages"],
)
def test_what_docker_build_would_refuse_or_the_reader_does_not_model(
    context: Path, text: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        copied(context, text)
