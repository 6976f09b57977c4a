"""Engines and sessions, built on demand from a URL (never at import).

One engine per URL per process. A forked child (a Celery pool process) must not reuse its
parent's pooled connections: after a fork, every engine drops them without closing them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True)
class PoolLimits:
    """How many connections one engine holds (`size`), may open beyond that under load
    (`overflow`), and how long a caller waits for one before sqlalchemy.exc.TimeoutError."""

    size: int = 5
    overflow: int = 5
    timeout_seconds: float = 30.0


_engines: dict[tuple[str, PoolLimits], Engine] = {}
_lock = threading.Lock()

# Errors that mean "the store is unreachable right now", as opposed to a bad statement.
TRANSIENT_ERRORS = (OperationalError,)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def get_engine(url: str, limits: PoolLimits | None = None) -> Engine:
    key = (url, limits or PoolLimits())
    with _lock:
        if key not in _engines:
            _engines[key] = _create_engine(normalize_url(url), key[1])
        return _engines[key]


def dispose_engine(url: str) -> None:
    with _lock:
        engines = [_engines.pop(key) for key in list(_engines) if key[0] == url]
    for engine in engines:
        engine.dispose()


def _after_fork_in_child() -> None:
    for engine in _engines.values():
        engine.dispose(close=False)  # the parent keeps using those connections


os.register_at_fork(after_in_child=_after_fork_in_child)


# libpq's: connect within 5 s; an idle-looking connection is probed after 5 s of silence,
# every 2 s, and given up after 3 unanswered probes (about 11 s to notice a dead peer).
POSTGRES_TIMEOUTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# How long a connection stuck on a silent store may take to notice (connect or keepalives).
STORE_STALL_SECONDS = 15.0


def _create_engine(url: str, limits: PoolLimits) -> Engine:
    parsed = make_url(url)
    pool = {
        "pool_size": limits.size,
        "max_overflow": limits.overflow,
        "pool_timeout": limits.timeout_seconds,
    }
    if parsed.get_backend_name() != "sqlite":
        # A store cut off by a network that drops packets (rather than refusing them) must
        # fail a connect or a query in seconds, not after the kernel's TCP retries (minutes):
        # heartbeats come back soon after the store does (core.running.reaper).
        args = POSTGRES_TIMEOUTS if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=args, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        pool = {}  # an in-memory database is one connection (SingletonThreadPool)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(url: str, limits: PoolLimits | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url, limits), expire_on_commit=False)
