"""Text that can be stored: PostgreSQL's text and JSONB hold any character but NUL (\\x00).

Every string from a request that is stored is checked with these: a spec's (core/spec/base.py),
an upload's column names and labels (core/data/uploads.py), and the API's query and path
(api/nul_bytes.py).
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"


def nul_message(text: str) -> str:
    shown = ascii(text if len(text) <= 40 else text[:40] + "…")
    return (
        "expected text without NUL (\\x00) characters or lone surrogates, which cannot be "
        f"stored; received {shown}"
    )


def nul_in(value: Any) -> tuple[str, str] | None:
    """The first string holding a NUL within `value` (a string, or the keys and items of its
    dicts, lists and tuples; other objects are not entered): where it is below `value` ("" for
    `value` itself, "[2]: " for an item) and the string."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, str):
            if not storable(node):
                return (f"{at}: " if at else ""), node
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and not storable(key):
                    return (f"{at}: " if at else ""), key
                stack.append((f"{at}[{key!r}]", item))
        elif isinstance(node, list | tuple):
            stack.extend((f"{at}[{i}]", item) for i, item in enumerate(node))
    return None


def storable(text: str) -> bool:
    """Whether PostgreSQL can store `text`: no NUL, and valid Unicode (no lone surrogate, which
    JSON's `\\ud800` escape can make)."""
    if NUL in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
