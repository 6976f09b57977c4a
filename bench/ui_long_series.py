"""The job page with a 1,000,000-point `batch_loss` (issue 14): from navigation to the chart
drawn, in headless Chromium, served by the real API.

    python bench/ui_long_series.py [--api-only] [POSTGRES_SERVER_URL]

A scratch database on the server (default: EPOCHAL_BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres) and Redis (EPOCHAL_BENCH_REDIS_URL, else
redis://127.0.0.1:6379/0, keys under a prefix of their own, removed after). Two jobs submitted
through the API (no worker runs them), their points written straight into the store as a
finished run of 100 epochs leaves them, rollups included: one with 1,000,000 `batch_loss`
points, one with 1,000 (the baseline: the same page with a short series). Then:

- the API's answer to GET /v1/jobs/{id}/metrics?names=batch_loss&max_points=1000 (median of 7);
- unless --api-only, the page `#/jobs/<id>` opened in a fresh browser context, from `goto` to the batch_loss chart
  drawn (`[data-testid="chart-batch_loss"] .uplot[data-points]` above 0): the long job and the
  baseline alternate, 7 times each; medians, ranges, /proc/loadavg before and after.

The last line is the goal: `GOAL job page 1M batch_loss (s): <median> [<min>-<max>] (target <= 2)`.
Chromium is /usr/bin/chromium (or EPOCHAL_CHROMIUM).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import redis
from goals import goal_line
from service import free_port, wait_ready
from sqlalchemy import text
from sqlalchemy.engine import make_url

import migrations
from api.ui import STATIC
from cli.main import api_command
from core.store import jobs
from core.store.db import dispose_engine, session_factory
from core.store.metrics import rebuild_rollups
from core.store.models import JobStatus

LONG, SHORT, EPOCHS, REPEATS = 1_000_000, 1_000, 100, 7
TARGET_SECONDS = 2.0
CHROMIUM = os.environ.get("EPOCHAL_CHROMIUM", "/usr/bin/chromium")
DRAWN = """() => {
  const plot = document.querySelector('[data-testid="chart-batch_loss"] .uplot[data-points]');
  return plot !== null && Number(plot.dataset.points) > 0 ? Number(plot.dataset.points) : null;
}"""
SPEC = {
    "name": "long-series",
    "dataset": {"name": "digits", "validation_split": 0.2},
    "model": {
        "layers": [
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ]
    },
    "training": {
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "batch_size": 64,
        "epochs": EPOCHS,
        "metrics": ["accuracy"],
    },
}
# One point per step: a falling loss with noise, one spike and one dip that the envelope keeps.
BATCH_LOSS = (
    "INSERT INTO metric_points (job_id, name, step, epoch, value, kind, recorded_at) "
    "SELECT :job, 'batch_loss', g, (g - 1) / :per_epoch + 1, "
    "CASE WHEN g = :n * 3 / 10 THEN 50.0 WHEN g = :n * 7 / 10 THEN 0.0001 "
    "ELSE 2.3 / sqrt(g) + 0.05 * random() END, 0, now() FROM generate_series(1, :n) AS g"
)
# One point per epoch, at the epoch's last step, for the epoch series a run writes.
EPOCH_SERIES = (
    "INSERT INTO metric_points (job_id, name, step, epoch, value, kind, recorded_at) "
    "SELECT :job, :name, e * :per_epoch, e, :a / sqrt(e) + :b, 0, now() "
    "FROM generate_series(1, :epochs) AS e"
)
EPOCH_CURVES = {  # name: (a, b) of a / sqrt(epoch) + b
    "loss": (2.0, 0.05),
    "val_loss": (2.0, 0.1),
    "accuracy": (-0.6, 0.99),
    "val_accuracy": (-0.6, 0.97),
    "lr": (0.0, 0.001),
}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fill(database_url: str, job_id: str, points: int) -> None:
    """The points of a finished 100-epoch run with `points` steps, and the job marked done."""
    sessions = session_factory(database_url)
    per_epoch = points // EPOCHS
    with sessions.begin() as s:
        s.execute(text(BATCH_LOSS), {"job": job_id, "n": points, "per_epoch": per_epoch})
        for name, (a, b) in EPOCH_CURVES.items():
            values = {"job": job_id, "name": name, "a": a, "b": b}
            s.execute(text(EPOCH_SERIES), {**values, "per_epoch": per_epoch, "epochs": EPOCHS})
        for name in ["batch_loss", *EPOCH_CURVES]:
            rebuild_rollups(s, job_id=job_id, name=name)  # write_points keeps them up to date
        job = jobs.claim_job(s, job_id=job_id, worker="bench/1", device="cpu")
        assert job is not None
        progress = {"epoch": EPOCHS, "epochs": EPOCHS, "step": points, "steps": points}
        jobs.record_progress(s, job_id=job_id, attempt=job.attempts, progress=progress)
        jobs.finish_job(s, job_id=job_id, attempt=job.attempts, status=JobStatus.SUCCEEDED)
    # Committed: statistics from an ANALYZE that is rolled back are lost, and without them the
    # planner reads all 1,000,000 rows to find the 1,000 last points (see the README's figures).
    with sessions.begin() as s:
        s.execute(text("ANALYZE metric_points"))
        s.execute(text("ANALYZE metric_rollups"))


def api_seconds(url: str, job_id: str) -> tuple[list[float], int]:
    times, n = [], 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(REPEATS):
            started = time.perf_counter()
            r = client.get(
                f"/v1/jobs/{job_id}/metrics", params={"names": "batch_loss", "max_points": 1000}
            )
            times.append(time.perf_counter() - started)
            r.raise_for_status()
            n = len(r.json()["series"][0]["steps"])
    return times, n


def page_seconds(browser, url: str, job_id: str) -> tuple[float, int]:
    """From navigation to the batch_loss chart drawn, in a fresh context (no cache)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(f"{url}/#/jobs/{job_id}")
        try:
            drawn = page.wait_for_function(DRAWN, timeout=60_000).json_value()
        except Exception:
            print("the chart was not drawn; the page shows:\n" + page.inner_text("body")[:2000])
            raise
        return time.perf_counter() - started, int(drawn)
    finally:
        context.close()


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}-{max(values):.3f}]"


def main(server: str, broker: str, api_only: bool) -> int:
    """0 when timed; 2 when the job page is not there (the data and the API are timed)."""
    page_missing = not (STATIC / "pages" / "job.js").is_file()  # what the API will serve
    if page_missing:
        print("the job page (api/ui/static/pages/job.js) is not there yet: the API only")
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"epochal_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-ui-{uuid.uuid4().hex[:8]}:"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    api = None
    try:
        migrations.upgrade(url)
        with tempfile.TemporaryDirectory(prefix="epochal-bench-") as workdir:
            env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
            env.update(
                EPOCHAL_DATABASE_URL=url,
                EPOCHAL_BROKER_URL=broker,
                EPOCHAL_BROKER_KEY_PREFIX=prefix,
                EPOCHAL_ARTIFACTS_DIR=f"{workdir}/artifacts",
                EPOCHAL_AUTH="off",
            )
            port = free_port()
            log = open(f"{workdir}/api.log", "wb")  # noqa: SIM115 - the process's
            api = subprocess.Popen(
                api_command("127.0.0.1", port, "warning"),
                cwd=workdir,  # `python -m` puts its folder first on the path: not a checkout
                env=env,
                stdout=log,
                stderr=log,
            )
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, Path(f"{workdir}/api.log"), api)
            ids = {}
            for points in (LONG, SHORT):
                r = httpx.post(f"{base}/v1/jobs", json={**SPEC, "name": f"series-{points}"})
                r.raise_for_status()
                ids[points] = r.json()["id"]
                started = time.perf_counter()
                fill(url, ids[points], points)
                print(f"{points:>9,} points written in {time.perf_counter() - started:.1f} s")

            before = loadavg()
            print(f"loadavg before: {before}", flush=True)
            for points in (LONG, SHORT):
                times, n = api_seconds(base, ids[points])
                print(
                    f"GET metrics batch_loss max_points=1000 on {points:>9,} points: "
                    f"{median_range(times)} ({n} points back)",
                    flush=True,
                )
            if api_only or page_missing:
                print(f"loadavg after: {loadavg()}")
                return 2 if page_missing else 0
            from playwright.sync_api import sync_playwright

            long_t, short_t, drawn = [], [], {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                page_seconds(browser, base, ids[SHORT])  # warm-up: the API's first requests
                for _ in range(REPEATS):
                    for points, into in ((LONG, long_t), (SHORT, short_t)):
                        seconds, drawn[points] = page_seconds(browser, base, ids[points])
                        into.append(seconds)
                browser.close()
            print(
                f"job page, {LONG:,}-point batch_loss: {median_range(long_t)}, drawn {drawn[LONG]}"
            )
            print(
                f"job page, {SHORT:,}-point batch_loss: {median_range(short_t)}, drawn {drawn[SHORT]}"
            )
            print(f"loadavg after: {loadavg()}")
            print(
                goal_line(
                    "job page 1M batch_loss (s)",
                    long_t,
                    statistics.median(long_t),
                    TARGET_SECONDS,
                    at_least=False,
                )
            )
    finally:
        if api is not None:
            api.terminate()
            api.wait(20)
        dispose_engine(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(broker)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    return 0


if __name__ == "__main__":
    default = os.environ.get(
        "EPOCHAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    broker = os.environ.get("EPOCHAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    args = [a for a in sys.argv[1:] if a != "--api-only"]
    sys.exit(main(args[0] if args else default, broker, "--api-only" in sys.argv))
