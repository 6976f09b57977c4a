"""The issue's goals as one line each: the form a benchmark prints, and the table `make bench`
prints from its log.

A goal-measuring script ends with one line per goal (`goal_line` writes it):

    GOAL MLP vs Keras: 4.12 [3.80-4.55] (target >= 5) FAIL

the ratio of the medians, the range of the per-repetition ratios, the target and the verdict.

    python bench/goals.py LOG [SCRIPT ...]

reads a log written by `make bench` (each script's output after a `=== bench/<script>.py`
header, and a `=== exit <code>` line after it) and prints every GOAL line in a table, then
each named script that failed or never printed its goals, so one broken script does not hide
the others' figures. Exit status 1 when a script failed.
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

GOAL = re.compile(
    r"^GOAL (?P<name>[^:]+): (?P<ratio>\S+) \[(?P<low>[^\]]+)\] "
    r"\(target (?P<op>>=|<=) (?P<target>[^)]+)\) (?P<verdict>PASS|FAIL)\s*$"
)
HEADER = re.compile(r"^=== (?P<script>\S+\.py)\s*$")
EXIT = re.compile(r"=== exit (?P<code>-?\d+)\s*$")


def goal_line(
    name: str,
    per_repetition: list[float],
    median_ratio: float,
    target: float,
    *,
    at_least: bool = True,
    equal_accuracy: bool = True,
) -> str:
    """`GOAL <name>: <ratio> [<min>-<max>] (target >= t) PASS|FAIL`, the ratio being that of
    the contenders' medians and the range that of the ratios within each repetition; a goal
    measured at unequal accuracy fails whatever its ratio."""
    met = median_ratio >= target if at_least else median_ratio <= target
    met = met and equal_accuracy
    op = ">=" if at_least else "<="
    low, high = min(per_repetition), max(per_repetition)
    return (
        f"GOAL {name}: {median_ratio:.2f} [{low:.2f}-{high:.2f}] (target {op} {target:g}) "
        f"{'PASS' if met else 'FAIL'}"
    )


def ratios(a: list[float], b: list[float]) -> tuple[float, list[float]]:
    """The ratio of the medians of `a` and `b`, and the ratios repetition by repetition."""
    return statistics.median(a) / statistics.median(b), [x / y for x, y in zip(a, b, strict=True)]


def read_log(text: str) -> tuple[list[tuple[str, re.Match[str]]], dict[str, int | None]]:
    """The GOAL lines with the script that printed each, and each script's exit code (None
    when the log ends inside it)."""
    goals: list[tuple[str, re.Match[str]]] = []
    exits: dict[str, int | None] = {}
    script = "?"
    for line in text.splitlines():
        if header := HEADER.match(line):
            script = header["script"]
            exits[script] = None
        elif done := EXIT.search(line):  # also after output without a final newline
            exits[script] = int(done["code"])
        elif goal := GOAL.match(line):
            goals.append((script, goal))
    return goals, exits


def table(log: str, expected: list[str]) -> tuple[str, bool]:
    """The goals table and whether every expected script ran to a zero exit."""
    goals, exits = read_log(log)
    rows = [
        "| goal | ratio | range | target | verdict | script |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for script, g in goals:
        rows.append(
            f"| {g['name']} | {g['ratio']} | {g['low']} | {g['op']} {g['target']} "
            f"| {g['verdict']} | {script} |"
        )
    if not goals:
        rows.append("| (no GOAL lines) | | | | | |")
    problems = []
    for script in expected or list(exits):
        code = exits.get(script, "missing")
        if code == "missing":
            problems.append(f"{script}: not run (missing)")
        elif code is None:
            problems.append(f"{script}: did not finish")
        elif code != 0:
            problems.append(f"{script}: FAILED (exit {code})")
    lines = rows + (["", *problems] if problems else [])
    return "\n".join(lines), not problems


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    log = Path(sys.argv[1]).read_text(errors="replace")
    text, ok = table(log, sys.argv[2:])
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
