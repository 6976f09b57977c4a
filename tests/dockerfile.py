"""What a Dockerfile's COPY lines put in the image, read the way `docker build` reads them.

Only what Epochal's Dockerfile needs is modelled: one build stage, COPY (and ADD of local paths)
in shell or JSON form with several sources, `./x` and `/x` sources (both relative to the build
context), wildcards, `.dockerignore` (with `**` and `!` exceptions), and WORKDIR. Anything else
that changes what lands in the image (`--from`, `--parents`, `--exclude`, variables, heredocs, a
second FROM) raises `Unsupported`, so that the test says so instead of modelling it wrongly.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


class Unsupported(Exception):
    """The Dockerfile does something this model does not read."""


class NotInContext(Exception):
    """A COPY source that the build context lacks (or that .dockerignore excludes)."""


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: COPY, RUN, WORKDIR, ...
    value: str  # the rest of the instruction, continuation lines joined
    workdir: str  # the working directory that the instruction runs in
    line: int  # where it starts, 1-based


def instructions(text: str) -> list[Instruction]:
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first, before any other line
        directive = re.fullmatch(r"#\s*(\w+)\s*=\s*(\S+)\s*", line)
        if directive is None:
            break
        if directive[1].lower() == "escape":
            escape = directive[2]
    result: list[Instruction] = []
    workdir, stages = "/", 0
    i = 0
    while i < len(lines):
        start, parts = i + 1, []
        while i < len(lines):
            line = lines[i]
            i += 1
            if line.strip().startswith("#"):  # a comment, also inside a continued instruction
                continue
            if line.rstrip().endswith(escape):
                parts.append(line.rstrip()[: -len(escape)])
                continue
            parts.append(line)
            break
        joined = " ".join(p.strip() for p in parts).strip()
        if not joined:
            continue
        keyword, _, value = joined.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            stages += 1
            if stages > 1:
                raise Unsupported(f"line {start}: a second build stage")
            workdir = "/"
        elif keyword == "WORKDIR":
            if "$" in value:
                raise Unsupported(f"line {start}: a variable in WORKDIR")
            workdir = posixpath.normpath(posixpath.join(workdir, value))
        result.append(Instruction(keyword, value, workdir, start))
    return result


def copy_sources_and_dest(instruction: Instruction) -> tuple[list[str], str]:
    """The sources (as written) and the absolute destination of a COPY or ADD."""
    value = instruction.value
    flags: list[str] = []
    while value.startswith("--"):
        flag, _, value = value.partition(" ")
        flags.append(flag)
        value = value.strip()
    for flag in flags:
        if flag.split("=")[0] not in ("--chown", "--chmod", "--link"):
            raise Unsupported(f"line {instruction.line}: COPY {flag}")
    if value.startswith("<<"):
        raise Unsupported(f"line {instruction.line}: a heredoc")
    args = json.loads(value) if value.startswith("[") else value.split()
    if len(args) < 2:
        raise Unsupported(f"line {instruction.line}: COPY needs a source and a destination")
    if any("$" in a for a in args):
        raise Unsupported(f"line {instruction.line}: a variable in COPY")
    *sources, dest = args
    if instruction.keyword == "ADD" and any(re.match(r"\w+://|git@", s) for s in sources):
        raise Unsupported(f"line {instruction.line}: ADD of a URL")
    absolute = posixpath.join(instruction.workdir, dest)
    if dest.endswith("/") or dest in (".", ".."):
        absolute = posixpath.normpath(absolute) + "/"
    else:
        absolute = posixpath.normpath(absolute)
    return sources, absolute


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    exception: bool  # a `!` line: brings back what an earlier line excluded


def _regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match, plus `**` for any number of directories (as .dockerignore has it)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def dockerignore(text: str) -> list[Pattern]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        patterns.append(Pattern(_regex(line), exception))
    return patterns


def is_ignored(path: str, patterns: list[Pattern]) -> bool:
    """The last pattern that matches the path, or one of its parent folders, decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(p) for p in prefixes):
            ignored = not pattern.exception
    return ignored


def context_files(context: Path) -> set[str]:
    """The files `docker build` sends: every file under the context less .dockerignore's."""
    ignore_file = context / ".dockerignore"
    patterns = dockerignore(ignore_file.read_text()) if ignore_file.exists() else []
    prune = not any(p.exception for p in patterns)  # else a `!` may bring back a file below
    files = set()
    for folder, dirs, names in os.walk(context):
        here = Path(folder).relative_to(context).as_posix()
        rel = "" if here == "." else here + "/"
        if prune:
            dirs[:] = [d for d in dirs if not is_ignored(rel + d, patterns)]
        files.update(rel + n for n in names if not is_ignored(rel + n, patterns))
    return files


def _matches(source: str, files: set[str], line: int) -> list[tuple[str, bool]]:
    """(path, is_folder) for each context entry that a COPY source names."""
    source = posixpath.normpath(source.lstrip("/"))
    folders = {"/".join(f.split("/")[:n]) for f in files for n in range(1, f.count("/") + 1)}
    if source == ".":
        return [("", True)]
    if re.search(r"[*?\[]", source):
        regex = _regex(source.replace("**", "*"))  # COPY wildcards never cross a `/`
        found = [(f, False) for f in sorted(files) if regex.fullmatch(f)]
        found += [(d, True) for d in sorted(folders) if regex.fullmatch(d)]
    elif source in files:
        found = [(source, False)]
    elif source in folders:
        found = [(source, True)]
    else:
        found = []
    if not found:
        raise NotInContext(f"line {line}: COPY {source}: not in the build context")
    return found


def image_files(dockerfile: Path, context: Path, stop: int | None = None) -> dict[str, str]:
    """{absolute path in the image: path in the context} for the COPY lines before line `stop`."""
    files = context_files(context)
    placed: dict[str, str] = {}
    for instruction in instructions(dockerfile.read_text()):
        if stop is not None and instruction.line >= stop:
            break
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        sources, dest = copy_sources_and_dest(instruction)
        found = [m for s in sources for m in _matches(s, files, instruction.line)]
        into_folder = dest.endswith("/") or any(p.startswith(dest + "/") for p in placed)
        if len(found) > 1 and not dest.endswith("/"):
            raise NotInContext(
                f"line {instruction.line}: several sources need a destination ending in /"
            )
        for path, is_folder in found:
            if is_folder:
                prefix = path + "/" if path else ""
                for f in files:
                    if f.startswith(prefix):
                        placed[posixpath.join(dest, f.removeprefix(prefix))] = f
            elif into_folder:
                placed[posixpath.join(dest, posixpath.basename(path))] = path
            else:
                placed[dest] = path
    return placed


def lay_out(placed: dict[str, str], context: Path, root: Path) -> None:
    """Copy the files into `root` as the image's `/`."""
    for target, source in placed.items():
        path = root / target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(context / source, path)
