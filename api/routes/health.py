"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EnqueuerDep, SessionDep
from api.problems import problem
from api.queue import BrokerUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(session: SessionDep, queue: EnqueuerDep) -> dict[str, str] | JSONResponse:
    checks: dict[str, str] = {}
    try:
        session.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as e:  # noqa: BLE001 - report any failure to reach the store
        checks["store"] = f"unreachable: {e.__class__.__name__}: {e}"
    try:
        queue.ping()
        checks["broker"] = "ok"
    except BrokerUnavailable as e:
        checks["broker"] = str(e)
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", **checks}
    detail = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    return problem("not_ready", detail)
