"""uvicorn's entry point: `uvicorn --factory api.main:served_app` (what `epochal api` runs)."""

from fastapi import FastAPI

from api.app import create_app
from core import logs
from core.settings import get_settings

# uvicorn's loggers, which keep to their own handlers; their levels are uvicorn's --log-level.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def served_app() -> FastAPI:
    """The application, once this process logs as EPOCHAL_LOG_FORMAT says (uvicorn calls this
    before its first line about the server)."""
    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level, own=UVICORN_LOGGERS)
    return create_app(settings)
