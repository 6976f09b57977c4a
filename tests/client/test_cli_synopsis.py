"""The README's `epochal` commands name verbs and options that the CLI has.

Every command in a ```bash block of README.md that begins with `epochal` (at a line's start, in
`$(...)`, after `docker compose run --rm api` or a path such as `.venv/bin/`) is checked against
`epochal_client.cli.main.parser()`, the server's verbs included (this venv has both
distributions): its verb (and the sub-verb of `datasets` and `keys`) exists, and each `--option`
or `-o` written is one of that verb's. The synopses write alternatives with ` | `
(`sweep-pause ID | sweep-resume ID`, `[--cursor C | --all]`); each alternative that begins with a
verb is a command of its own. What the README's runnable blocks do is tests/test_readme_commands.py's.
"""

from __future__ import annotations

import argparse
import functools
import re

import pytest

from epochal_client.cli.main import parser
from tests.readme import README, code_blocks

# Where a command begins: `epochal` or `<path>/epochal`, at a line's start or after `$(`, a
# space (`KEY=$(epochal ...`, `docker compose run --rm api epochal ...`, `FOO=1 epochal ...`).
START = re.compile(r"(?:^|(?<=\$\()|(?<=\s))(?:[\w./-]*/)?epochal (?=[a-z])")
END = re.compile(r"\)|#|2>&1|&&|;|>\s")  # where the command's own text ends
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def commands(text: str) -> list[str]:
    """Each `epochal ...` command of the bash blocks of `text` (a README), without `epochal`;
    the alternatives of a synopsis line apart."""
    found = []
    for _, body in code_blocks("bash", text):
        for line in body.splitlines():
            for start in START.finditer(line):
                rest = line[start.end() :]
                end = END.search(rest)
                found.extend(alternatives(rest[: end.start()] if end else rest))
    return found


def alternatives(command: str) -> list[str]:
    """`a X | b Y` -> [`a X`, `b Y`] (outside brackets only); a pipe into another program
    (`| jq ...`) ends the command."""
    parts, depth, current, i = [], 0, "", 0
    while i < len(command):
        depth += {"[": 1, "]": -1}.get(command[i], 0)
        if depth == 0 and command[i : i + 3] == " | ":
            parts.append(current)
            current, i = "", i + 3
            continue
        current += command[i]
        i += 1
    parts.append(current)
    parts = [p.strip() for p in parts if p.strip()]
    verbs = _subcommands(cli()) or {}
    kept = parts[:1]
    for part in parts[1:]:
        if part.split()[0] not in verbs:
            break  # a pipe into jq, head, ...
        kept.append(part)
    return kept


@functools.cache
def cli() -> argparse.ArgumentParser:
    return parser()


def _subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return None


def problems(p: argparse.ArgumentParser, command: str) -> list[str]:
    """What `epochal <command>` names that the CLI lacks (none: [])."""
    words = command.split()
    target, named = p, ["epochal"]
    for word in words:  # down through the verb and any sub-verb
        verbs = _subcommands(target)
        if verbs is None:
            break
        if word not in verbs:
            return [f"epochal {command!r}: {' '.join(named)} has no verb {word!r}"]
        target = verbs[word]
        named.append(word)
    else:
        if _subcommands(target) is not None:
            return [f"epochal {command!r}: {' '.join(named)} wants a verb"]
    known = set(target._option_string_actions)
    return [
        f"epochal {command!r}: {' '.join(named)} has no option {option}"
        for option in OPTION.findall(" ".join(words[len(named) - 1 :]))
        if option not in known
    ]


def test_every_readme_command_names_a_verb_and_options_the_cli_has() -> None:
    p = cli()
    found = commands(README.read_text())
    assert len(found) > 40  # the synopses and the runnable blocks
    assert [x for c in found for x in problems(p, c)] == []
    # ... and every verb of the CLI is in them, sub-verbs of datasets and keys included.
    verbs = _subcommands(p) or {}
    written = {tuple(c.split()[:2]) for c in found} | {(c.split()[0],) for c in found}
    missing = [
        " ".join(verb)
        for name, sp in verbs.items()
        for verb in ([(name, v) for v in _subcommands(sp)] if _subcommands(sp) else [(name,)])
        if verb not in written
    ]
    assert missing == [], "verbs the README never shows"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("epochal list --tag T --colour red", "list has no option --colour"),
        ("epochal metrics ID -x 3", "metrics has no option -x"),
        ("epochal frobnicate ID", "has no verb 'frobnicate'"),
        ("epochal datasets frob NAME", "epochal datasets has no verb 'frob'"),
        ("epochal datasets", "epochal datasets wants a verb"),
        ("epochal sweep-pause ID | sweep-resume ID --force", "sweep-resume has no option --force"),
        ("X=$(epochal keys create --rol admin | jq -r .)", "keys create has no option --rol"),
        ("epochal list [--cursor C | --al]", "list has no option --al"),
    ],
)
def test_the_check_finds_a_verb_or_option_that_does_not_exist(line: str, problem: str) -> None:
    found = commands(f"```bash\n{line}\n```\n")
    assert found, line
    reported = [x for c in found for x in problems(cli(), c)]
    assert len(reported) == 1 and problem in reported[0], reported


def test_the_check_passes_what_the_cli_has() -> None:
    text = (
        "```bash\nepochal list [--status S] [--cursor C | --all] --param a=1 --json\n"
        "epochal sweep-pause ID | sweep-resume ID | sweep-delete ID\n"
        "DIGITS=$(epochal submit s.yaml --wait --json --set a=1 | jq -r .id)\n"
        "epochal worker [--queues cpu|gpu|cpu,gpu]  # --nothing in a comment\n"
        "docker compose run --rm api epochal keys create --role admin --name ops\n```\n"
    )
    found = commands(text)
    assert [c.split()[0] for c in found] == [
        "list", "sweep-pause", "sweep-resume", "sweep-delete", "submit", "worker", "keys",
    ]  # fmt: skip
    assert [x for c in found for x in problems(cli(), c)] == []
