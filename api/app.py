"""The FastAPI application factory: `uvicorn --factory api.app:create_app`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from api import browsers, openapi, problems, prometheus, submissions, ui
from api.admission import WriteGate
from api.auth import KeyCache, caller
from api.body_limits import BodyLimitsMiddleware
from api.nul_bytes import NulBytesMiddleware
from api.queue import Enqueuer
from api.routes import (
    compare,
    datasets,
    evaluate,
    events,
    fleet,
    health,
    jobs,
    keys,
    models,
    restarts,
    specs,
    sweeps,
)
from core.artifacts import open_artifacts
from core.running.reaper import Reaper
from core.settings import Settings, get_settings
from core.store.db import PoolLimits, session_factory


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The objects of the imports (torch's among them, ~350,000) leave the collector's full
        # passes, which a body of many small lists or objects triggers again and again while it
        # is parsed: 1 MiB of `[[],[],...]` took 2.5 s of CPU with them, 0.1 s without.
        gc.freeze()
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # Jobs whose worker died are noticed here too, when no worker is left to notice.
        reaper = Reaper(app.state.sessions, settings, app.state.enqueuer.send_train).start()
        yield
        reaper.stop()
        gc.unfreeze()
        app.state.enqueuer.close()

    app = FastAPI(
        title="Epochal",
        version="1",
        summary="Train neural networks on request: submit a spec, poll the job, query its metrics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessions = session_factory(
        settings.database_url,
        PoolLimits(
            settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_seconds
        ),
    )
    app.state.artifacts = open_artifacts(settings)  # one store (and HTTP pool) per process
    app.state.enqueuer = Enqueuer(settings)
    app.state.key_cache = KeyCache(settings.auth_cache_seconds)
    problems.install(app)
    submissions.install(app)
    app.include_router(health.router)
    # Every /v1 route checks its caller, whether or not it reads the caller's project.
    authenticated = [Depends(caller)]
    routers = (
        jobs,
        datasets,
        compare,
        events,
        models,
        restarts,
        evaluate,
        sweeps,
        keys,
        fleet,
        specs,
    )
    for module in routers:
        app.include_router(module.router, dependencies=authenticated)
    prometheus.install(app, settings)  # /metrics: its own key rule (api/prometheus.py)
    openapi.install(app)  # once every route is in
    ui.install(app)  # the dashboard at / (static files; it calls /v1 like any client)
    # Uploads stream to disk under EPOCHAL_MAX_UPLOAD_BYTES; every other body is bounded here.
    app.add_middleware(BodyLimitsMiddleware, settings=settings, raw_paths=[datasets.router.prefix])
    app.add_middleware(NulBytesMiddleware)
    app.add_middleware(  # before the body is read
        WriteGate,
        limit=settings.max_inflight_writes,
        upload_limit=settings.max_inflight_uploads,
        wait=settings.admission_wait_seconds,
    )
    browsers.install(app, settings)  # outermost: CORS and the browser rules come first
    return app
