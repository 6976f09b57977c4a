"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EnqueuerDep, SessionDep
from api.problems import problem
from api.queue import BrokerUnavailable

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(session: SessionDep, queue: EnqueuerDep) -> dict[str, str] | JSONResponse:
    """Which dependency is down, never where it lives: the detail (host names, ports) is
    logged here, not answered."""
    checks: dict[str, str] = {}
    try:
        session.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as e:  # noqa: BLE001 - report any failure to reach the store
        log.warning("readyz: the store is unreachable: %s: %s", type(e).__name__, e)
        checks["store"] = "unreachable"
    try:
        queue.ping()
        checks["broker"] = "ok"
    except BrokerUnavailable:  # logged by the Enqueuer
        checks["broker"] = "unreachable"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", **checks}
    detail = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    return problem("not_ready", detail)
