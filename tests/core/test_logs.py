"""Log lines as EPOCHAL_LOG_FORMAT says, each line of a running job naming the job and attempt."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import migrations
from core import logs
from core.running.runner import Runner
from core.store.db import session_factory
from tests.conftest import make_settings
from tests.core.test_job_runner import moons, submit


class Captured:
    def __init__(self, formatter: logging.Formatter):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(logs.JobFilter())
        self.handler.setFormatter(formatter)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]


def capture(formatter: logging.Formatter, *loggers: str) -> Iterator[Captured]:
    """Lines at INFO and above of `loggers` (and, through the root, of every other logger)."""
    captured = Captured(formatter)
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *loggers)}
    root.addHandler(captured.handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(captured.handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def json_lines() -> Iterator[Captured]:
    # The engine's statements: lines that the runner's metric writer logs from its own thread.
    yield from capture(logs.JsonFormatter(), "sqlalchemy.engine")


@pytest.fixture
def text_lines() -> Iterator[Captured]:
    yield from capture(logs.TextFormatter())


def test_every_line_of_a_run_names_its_job_and_attempt_even_from_its_threads(
    empty_sqlite_url: str, tmp_path: Path, json_lines: Captured
) -> None:
    migrations.upgrade(empty_sqlite_url)
    settings = make_settings(empty_sqlite_url, "redis://unused", tmp_path)
    runner = Runner(session_factory(empty_sqlite_url), settings, "test-worker")
    job_id = submit(settings, moons(epochs=2))
    logging.getLogger("tests").info("before the run")
    assert runner.run(job_id) == "succeeded"
    logging.getLogger("tests").info("after the run")

    lines = json_lines.json()
    messages = [line["message"] for line in lines]
    start, end = messages.index("before the run"), messages.index("after the run")
    during = lines[start + 1 : end]
    assert "job_id" not in lines[end]  # the job is forgotten once `run` returns
    # The claim's statements come before the job is known; from the first line that names
    # it, every line does, whichever thread wrote it.
    named = next(i for i, line in enumerate(during) if "job_id" in line)
    running = during[named:]
    assert {(line["job_id"], line["attempt"]) for line in running} == {(job_id, 1)}
    assert any(line["logger"] == "core.running.runner" for line in running)
    threads = {line["thread"] for line in running}
    assert {"MainThread", f"sink-{job_id}"} <= threads, threads


def test_a_json_line_holds_the_time_level_logger_message_and_exception(
    json_lines: Captured,
) -> None:
    @logs.own_context
    def failing_job() -> None:
        logs.tag_job("j1", 3)
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("tests.job").exception("could not %s", "train")

    failing_job()
    (line,) = json_lines.json()
    assert line["time"].endswith("Z") and line["time"][:4].isdigit()
    assert (line["level"], line["logger"], line["message"]) == (
        "ERROR",
        "tests.job",
        "could not train",
    )
    assert (line["job_id"], line["attempt"]) == ("j1", 3)
    assert "KeyError: 'missing'" in line["exception"]
    assert line["thread"] == "MainThread" and line["pid"] > 0 and line["process"]


def test_a_text_line_names_the_job_in_front_of_the_message(text_lines: Captured) -> None:
    @logs.own_context
    def job() -> None:
        logs.tag_job("j2", 1)
        thread = logs.ContextThread(target=lambda: logging.getLogger("tests").info("in a thread"))
        thread.start()
        thread.join()

    job()
    logging.getLogger("tests").info("outside")
    inside, outside = text_lines.lines()
    assert inside.endswith(" INFO tests: [job j2 #1] in a thread")
    assert outside.endswith(" INFO tests: outside")


def test_a_threads_uncaught_error_is_a_line_of_its_job(
    json_lines: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threading, "excepthook", logs.log_uncaught)  # as configure() sets it

    def fail() -> None:
        raise OSError("disk gone")

    @logs.own_context
    def job() -> None:
        logs.tag_job("j3", 2)
        thread = logs.ContextThread(target=fail, name="writer")
        thread.start()
        thread.join()

    job()
    (line,) = json_lines.json()
    assert (line["logger"], line["message"]) == ("threading", "uncaught exception in thread writer")
    assert (line["job_id"], line["attempt"], line["thread"]) == ("j3", 2, "writer")
    assert line["exception"].endswith("OSError: disk gone")
