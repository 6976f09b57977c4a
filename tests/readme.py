"""README.md's fenced code blocks, for the tests that run them."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def code_blocks(lang: str, text: str | None = None) -> list[tuple[str, str]]:
    """(heading, body) of each ```<lang> block, in order; heading: the nearest one above it.

    A fence may be indented (a block inside a list item); its body is dedented by as much."""
    text = README.read_text() if text is None else text
    blocks: list[tuple[str, str]] = []
    heading, fence_lang, indent, body = "", None, 0, []
    for line in text.splitlines():
        stripped = line.strip()
        if fence_lang is not None:  # inside a block
            if stripped == "```":
                if fence_lang == lang:
                    blocks.append((heading, "\n".join(body) + "\n"))
                fence_lang = None
            else:
                body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
        elif stripped.startswith("```"):
            fence_lang, indent, body = stripped[3:].strip(), len(line) - len(line.lstrip()), []
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
    return blocks
