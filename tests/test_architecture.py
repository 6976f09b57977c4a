"""The direction of imports (STYLE.md, "Shape of the house"), read from the source with `ast`:
nothing is imported, so an import hidden in a function or under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package (a folder under the root) -> modules that no file in it may import
FORBIDDEN = {
    # `core` is the shared library: no web framework, no task queue, neither of its users.
    "core": {"api", "worker", "fastapi", "starlette", "uvicorn", "celery", "kombu"},
    # Training is a plain loop: running a stored job, the store and the sweeps sit above it.
    "core/training": {"core.store", "core.sweeps", "core.running"},
    # The API enqueues by task name; the worker answers no HTTP.
    "api": {"worker"},
    "worker": {"api"},
}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module the source imports, relative imports resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from core import store` imports core.store: count both spellings.
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def is_within(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


def violations(folder: str, forbidden: set[str], root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        module = module_name(path, root)
        names = imported_modules(path.read_text(), module, path.name == "__init__.py")
        found += [
            f"{path.relative_to(root)} imports {name}"
            for name in sorted(names)
            if any(is_within(name, f) for f in forbidden)
        ]
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_go_one_way(folder: str) -> None:
    assert list((ROOT / folder).rglob("*.py")), f"no sources under {folder}/"
    assert violations(folder, FORBIDDEN[folder]) == []


def test_the_check_finds_every_spelling_of_a_forbidden_import(tmp_path: Path) -> None:
    training = tmp_path / "core" / "training"
    training.mkdir(parents=True)
    (tmp_path / "core" / "__init__.py").write_text("")
    (training / "__init__.py").write_text("from ..running import runner\n")
    (training / "fine.py").write_text("import torch\nfrom core.training import fit\n")
    (training / "late.py").write_text(
        "def f():\n    import core.store.jobs\n    from core import sweeps\n    from . import fit\n"
    )
    (training / "queue.py").write_text("from celery import Celery\n")
    assert violations("core/training", FORBIDDEN["core/training"], tmp_path) == [
        "core/training/__init__.py imports core.running",
        "core/training/__init__.py imports core.running.runner",
        "core/training/late.py imports core.store.jobs",
        "core/training/late.py imports core.sweeps",
    ]
    assert violations("core", FORBIDDEN["core"], tmp_path) == [
        "core/training/queue.py imports celery",
        "core/training/queue.py imports celery.Celery",
    ]
