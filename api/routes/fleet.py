"""/v1/workers and /v1/queues: the live fleet, and how deep each queue is.

Workers are the whole fleet's (every caller shares them); the ids of their running jobs, and
the queued jobs counted per queue, are the caller's project's (an admin's `?project=*`: all).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CallerDep
from api.deps import EnqueuerDep, FleetDep, SessionDep
from api.fleet_schemas import OldestJob, QueueOut, WorkerOut
from core.dispatch import QUEUES
from core.store import fleet_stats
from core.store import workers as worker_store
from core.store.workers import age_seconds

router = APIRouter(prefix="/v1", tags=["fleet"])


@router.get("/workers", response_model=list[WorkerOut])
def list_workers(session: SessionDep, me: CallerDep, fleet: FleetDep) -> list[WorkerOut]:
    """Every live worker (its last heartbeat within EPOCHAL_WORKER_LIVE_BEATS heartbeats),
    with its queues, device, concurrency and running jobs."""
    running = worker_store.running_jobs(session, worker_ids=[w.id for w in fleet.workers])
    return [WorkerOut.of(w, running[w.id], me.project) for w in fleet.workers]


@router.get("/queues", response_model=list[QueueOut])
def list_queues(
    session: SessionDep, me: CallerDep, fleet: FleetDep, queue: EnqueuerDep
) -> list[QueueOut]:
    """Each queue's depth (in the store, and in the broker when it answers), its oldest waiting
    job and the live workers that serve it."""
    depths = fleet_stats.queue_depths(session, project=me.project)
    broker = queue.queue_lengths(QUEUES)
    answer = []
    for name in (*QUEUES, *sorted(set(depths) - set(QUEUES))):
        depth = depths.get(name, fleet_stats.QueueDepth(0))
        serving = fleet.serving(name)
        oldest = None
        if depth.oldest_id is not None and depth.oldest_enqueued_at is not None:
            oldest = OldestJob(
                id=depth.oldest_id,
                enqueued_at=depth.oldest_enqueued_at,
                waiting_seconds=round(age_seconds(depth.oldest_enqueued_at), 3),
            )
        answer.append(
            QueueOut(
                name=name,
                queued=depth.queued,
                broker_messages=broker.get(name) if broker is not None else None,
                oldest=oldest,
                workers=len(serving),
                gpu_workers=sum(w.device == "cuda" for w in serving),
            )
        )
    return answer
