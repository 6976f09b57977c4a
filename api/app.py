"""The FastAPI application factory: `uvicorn --factory api.app:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import openapi, problems
from api.queue import Enqueuer
from api.routes import (
    compare,
    datasets,
    evaluate,
    events,
    health,
    jobs,
    models,
    restarts,
    sweeps,
)
from api.yaml_body import YamlBodyMiddleware
from core.settings import Settings, get_settings
from core.store.db import session_factory


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.enqueuer.close()

    app = FastAPI(
        title="Epochal",
        version="1",
        summary="Train neural networks on request: submit a spec, poll the job, query its metrics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessions = session_factory(settings.database_url)
    app.state.enqueuer = Enqueuer(settings)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(compare.router)
    app.include_router(events.router)
    app.include_router(models.router)
    app.include_router(restarts.router)
    app.include_router(evaluate.router)
    app.include_router(sweeps.router)
    openapi.install(app)  # once every route is in
    app.add_middleware(YamlBodyMiddleware)
    return app
