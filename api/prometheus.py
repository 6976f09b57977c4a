"""GET /metrics in Prometheus' text format: HTTP latencies, and the whole fleet read from the store.

HTTP requests are timed by `HttpMetrics`, a small ASGI middleware (by route template, method
and status: this API process's own requests). Everything else is read from the store at scrape time by
`FleetCollector`, so one scrape of any API process sees the whole fleet, workers included, and
no multiprocess mode is needed: jobs by status and queue, queue depths and their oldest job,
live workers by device, training throughput, metric points written and job durations. When the
store is down, the scrape still answers (`epochal_store_up 0`, without the store's series).

Who may scrape: an admin key, or `Authorization: Bearer <EPOCHAL_METRICS_TOKEN>` when that
is set (what a Prometheus server sends), or any request that needs no key (loopback, or
EPOCHAL_AUTH=off). The numbers are the fleet's, every project's: a project's key is refused.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import ForbiddenError, caller
from api.queue import Enqueuer
from core.dispatch import QUEUES
from core.settings import Settings
from core.store import fleet_stats
from core.store.fleet_stats import DURATION_BUCKETS
from core.store.keys import Role
from core.store.models import JobStatus
from core.store.workers import Fleet, age_seconds

log = logging.getLogger(__name__)
PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # or "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FleetCollector(Collector):
    """The fleet's gauges, counters and histograms, read from the store on each scrape."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, enqueuer: Enqueuer):
        self.sessions, self.settings, self.enqueuer = sessions, settings, enqueuer

    def describe(self) -> list[Metric]:
        return []  # unknown until a scrape: registering must not read the store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("epochal_store_up", "1 when the store answered this scrape")
        try:
            families = list(self._from_store())
        except Exception as e:  # noqa: BLE001 - a scrape must answer while the store is down
            log.warning("/metrics: the store is unreachable: %s: %s", type(e).__name__, e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        broker = self.enqueuer.queue_lengths(QUEUES)
        if broker is not None:
            messages = GaugeMetricFamily(
                "epochal_broker_queue_messages",
                "messages waiting in the broker, per queue",
                labels=["queue"],
            )
            for queue, n in broker.items():
                messages.add_metric([queue], n)
            yield messages

    def _from_store(self) -> Iterator[Metric]:
        with self.sessions() as session:
            counts = fleet_stats.job_counts(session)
            depths = fleet_stats.queue_depths(session, project=None)
            fleet = Fleet.read(session, within_seconds=self.settings.worker_live_seconds)
            speed = fleet_stats.throughput(session)
            points = fleet_stats.points_written(session)
            durations = fleet_stats.durations(session)
        queues = sorted({*QUEUES, *(q for _, q in counts), *depths, *fleet.queues})

        jobs = GaugeMetricFamily(
            "epochal_jobs", "jobs by status and queue", labels=["status", "queue"]
        )
        for status in JobStatus:
            for queue in queues:
                jobs.add_metric([status.value, queue], counts.get((status.value, queue), 0))
        yield jobs

        depth = GaugeMetricFamily("epochal_queue_depth", "queued jobs", labels=["queue"])
        oldest = GaugeMetricFamily(
            "epochal_queue_oldest_job_age_seconds",
            "how long the queue's oldest queued job has waited since it was submitted",
            labels=["queue"],
        )
        running = GaugeMetricFamily("epochal_running_jobs", "running jobs", labels=["queue"])
        serving = GaugeMetricFamily(
            "epochal_queue_workers", "live workers serving the queue", labels=["queue"]
        )
        samples = GaugeMetricFamily(
            "epochal_training_samples_per_second",
            "training throughput of the queue's running jobs together",
            labels=["queue"],
        )
        for queue in queues:
            d = depths.get(queue, fleet_stats.QueueDepth(0))
            depth.add_metric([queue], d.queued)
            age = age_seconds(d.oldest_enqueued_at) if d.oldest_enqueued_at else 0.0
            oldest.add_metric([queue], age)
            running.add_metric([queue], counts.get((JobStatus.RUNNING.value, queue), 0))
            serving.add_metric([queue], len(fleet.serving(queue)))
            samples.add_metric([queue], speed.get(queue, 0.0))
        yield from (depth, oldest, running, serving, samples)

        workers = GaugeMetricFamily("epochal_workers", "live workers by device", labels=["device"])
        by_device: dict[str, int] = {"cpu": 0, "cuda": 0}
        for worker in fleet.workers:
            by_device[worker.device] = by_device.get(worker.device, 0) + 1
        for device, n in sorted(by_device.items()):
            workers.add_metric([device], n)
        yield workers

        yield CounterMetricFamily(
            "epochal_metric_points_written",
            "metric points written by the stored jobs' runs (a deleted job's leave the sum)",
            value=points,
        )

        histogram = HistogramMetricFamily(
            "epochal_job_duration_seconds",
            "run time of finished jobs (their last attempt's), by status and queue",
            labels=["status", "queue"],
        )
        bounds = [*(str(b) for b in DURATION_BUCKETS), "+Inf"]
        for (status, queue), d in sorted(durations.items()):
            histogram.add_metric(
                [status, queue], list(zip(bounds, d.counts, strict=True)), d.total_seconds
            )
        yield histogram


def scraper(request: Request) -> None:
    """The metrics token, or what `caller` accepts with an admin's role."""
    token = request.app.state.settings.metrics_token
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return
    me = caller(request, None)
    if me.role is not Role.ADMIN:
        raise ForbiddenError(
            "/metrics shows every project's jobs: an admin key, or EPOCHAL_METRICS_TOKEN, can "
            f"read it; this is a {me.role.value} key"
        )


router = APIRouter(tags=["monitoring"])


@router.get(
    PATH,
    response_class=Response,
    dependencies=[Depends(scraper)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this API's HTTP requests and of the whole fleet."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class HttpMetrics:
    """ASGI middleware: each HTTP request's duration by route template (`/v1/jobs/{job_id}`,
    `unmatched` for a path no route has), method and status. Innermost, where the matched
    route is in the scope; a stream (server-sent events) counts until its headers are sent."""

    def __init__(self, app: ASGIApp, histogram: Histogram):
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, headers_sent = 500, None

        async def sending(message: Message) -> None:
            nonlocal status, headers_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                if (b"content-type", b"text/event-stream") in [
                    (k.lower(), v.split(b";")[0]) for k, v in message.get("headers", ())
                ]:
                    headers_sent = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            handler = getattr(scope.get("route"), "path", None) or "unmatched"
            if handler != PATH:
                ended = headers_sent or time.perf_counter()
                method = scope["method"] if scope["method"] in METHODS else "other"
                labels = (handler, method, str(status))
                self.histogram.labels(*labels).observe(ended - started)


def install(app: FastAPI, settings: Settings) -> None:
    """A registry of this app's own (tests build many apps in one process), the HTTP timing
    middleware (call before any other middleware is added: it must be the innermost), the
    fleet's collector and the route."""
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    histogram = Histogram(
        "epochal_http_request_duration_seconds",
        "Duration of HTTP requests in seconds, by route template, method and status",
        ["handler", "method", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    app.add_middleware(HttpMetrics, histogram=histogram)
    registry.register(FleetCollector(app.state.sessions, settings, app.state.enqueuer))
    app.include_router(router)
