"""How Epochal's processes log, and which job each line of a worker is about.

`EPOCHAL_LOG_FORMAT` picks the shape of a line: `text` (`time LEVEL logger: message`) or `json`
(one object a line: time, level, logger, message, exception, process, thread). While a worker
runs a job, every line it logs carries the job's id and attempt (`[job <id> #<attempt>]` in
text, `job_id` and `attempt` in JSON): the runner names the job with `tag_job` inside a
function wrapped in `own_context`, and the threads it starts are `ContextThread`s, which log
under the job of the thread that started them.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import logging.config
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TypeVar

LogFormat = Literal["text", "json"]
P = ParamSpec("P")
R = TypeVar("R")

_job: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "epochal_job", default=None
)


def tag_job(job_id: str, attempt: int) -> None:
    """Name the job that the lines logged from here on are about, until the function wrapped
    in `own_context` that called this returns."""
    _job.set((job_id, attempt))


def own_context(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` in a copy of the caller's context: a job it tags is forgotten when it returns."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return contextvars.copy_context().run(func, *args, **kwargs)

    return wrapper


class ContextThread(threading.Thread):
    """A thread that runs in a copy of its creator's context, so that it logs under its job."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = contextvars.copy_context()

    def run(self) -> None:
        self.context.run(super().run)


class JobFilter(logging.Filter):
    """Puts the tagged job's `job_id` and `attempt` on each record, from the logging thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _job.get()
        if job is not None:
            record.job_id, record.attempt = job
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(job_tag)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job_tag = "" if job_id is None else f"[job {job_id} #{record.attempt}] "
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "time": time.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "job_id", None) is not None:
            line["job_id"], line["attempt"] = record.job_id, record.attempt
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        line.update(process=record.processName, pid=record.process, thread=record.threadName)
        return json.dumps(line, default=str)


def configure(log_format: LogFormat, level: str | int, *, own: Iterable[str] = ()) -> None:
    """Send every line to stderr in `log_format` at `level`. The loggers named in `own` (a
    server's, which keep to their own handlers) get the same handler and keep their levels;
    name a logger's children too, or dictConfig resets their levels."""
    level = level.upper() if isinstance(level, str) else level
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "epochal",
        "filters": ["job"],
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"job": {"()": JobFilter}},
            "formatters": {"epochal": {"()": formatter}},
            "handlers": {"stderr": handler},
            "root": {"level": level, "handlers": ["stderr"]},
            "loggers": {name: {"handlers": ["stderr"], "propagate": False} for name in own},
        }
    )
    logging.captureWarnings(True)  # a library's warning is a line like the others
    threading.excepthook = log_uncaught  # and so is a thread's uncaught error


def log_uncaught(args: threading.ExceptHookArgs) -> None:
    """Log what a thread did not catch (as threading's own hook would print it), under the job
    that the thread runs for."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    log = functools.partial(
        logging.getLogger("threading").error,
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
    context = getattr(args.thread, "context", None)  # a ContextThread's, left by now
    if context is None:
        log()
    else:
        context.run(log)
