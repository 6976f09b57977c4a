"""Every error code that `core` can raise has a row in api/problems.STATUS_OF, so no domain
error answers a bare 500; every code the API itself names has one too."""

from __future__ import annotations

import ast
import importlib
import logging
import pkgutil
import re
from pathlib import Path

import pytest

import core
from api.problems import STATUS_OF, problem
from core.errors import EpochalError

ROOT = Path(__file__).resolve().parents[2]
CODE_LITERAL = re.compile(r"""\bcode\s*=\s*["']([A-Za-z0-9_]+)["']""")


def all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    stack = [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                stack.append(sub)
    return found


def core_codes() -> dict[str, str]:
    """code -> where it comes from: every EpochalError subclass of every core module, and
    every `code="..."`/`code = "..."` literal in core's source."""
    for module in pkgutil.walk_packages(core.__path__, "core."):
        importlib.import_module(module.name)
    codes = {
        cls.code: f"{cls.__module__}.{cls.__qualname__}" for cls in all_subclasses(EpochalError)
    }
    for path in (ROOT / "core").rglob("*.py"):
        for code in CODE_LITERAL.findall(path.read_text()):
            codes.setdefault(code, str(path.relative_to(ROOT)))
    return codes


def test_core_raises_codes_and_the_scan_finds_them() -> None:
    codes = core_codes()
    # The walk reaches the modules that define their own errors, not only core/errors.py.
    assert {"invalid_checkpoint", "not_exportable", "invalid_sweep", "not_found"} <= set(codes)


def test_every_code_core_can_raise_has_an_http_status() -> None:
    missing = {code: where for code, where in core_codes().items() if code not in STATUS_OF}
    missing.pop(EpochalError.code, None)  # the base class: never raised itself (next test)
    assert missing == {}, f"add these codes to api/problems.STATUS_OF: {missing}"


def test_core_raises_no_bare_epochal_error() -> None:
    """A bare EpochalError would carry no code of its own; raise a subclass that has one."""
    bare = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "core").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "EpochalError"
    ]
    assert bare == []


def test_every_code_the_api_names_has_a_row() -> None:
    """Literal `problem("code", ...)` calls in api/ without an explicit status."""
    unmapped = []
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "problem"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and not any(k.arg == "status" for k in node.keywords)
                and node.args[0].value not in STATUS_OF
            ):
                unmapped.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.args[0].value}")
    assert unmapped == []


def test_an_unmapped_code_is_logged_as_such(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="api.problems"):
        r = problem("no_such_code", "x")
    assert r.status_code == 500
    assert "no_such_code" in caplog.text and "STATUS_OF" in caplog.text
    assert b'"title":"Unmapped error"' in r.body
