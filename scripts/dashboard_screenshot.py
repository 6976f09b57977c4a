"""The README's screenshot of the dashboard: a job page with its curves (or, where the job page
is not there, the jobs list), from a service of its own.

    python scripts/dashboard_screenshot.py [OUT.png]    # default docs/dashboard.png

Starts `epochal serve` (SQLite, the embedded broker, one worker) in a temporary folder, trains
two small digits jobs through the API, and opens the page in headless Chromium
(/usr/bin/chromium, or EPOCHAL_CHROMIUM) at 1280x800.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from api.ui import STATIC

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("EPOCHAL_CHROMIUM", "/usr/bin/chromium")


def spec(name: str, units: int, lr: float) -> dict:
    return {
        "name": name,
        "tags": ["readme"],
        "dataset": {"name": "digits", "validation_split": 0.2},
        "model": {
            "layers": [
                {"type": "dense", "units": units, "activation": "relu"},
                {"type": "dropout", "rate": 0.2},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ]
        },
        "training": {
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "adam", "learning_rate": lr},
            "batch_size": 32,
            "epochs": 30,
            "metrics": ["accuracy"],
            "seed": 0,
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def service(workdir: str):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHAL_")}
    env.update(EPOCHAL_DATABASE_URL=f"sqlite:///{workdir}/epochal.db", EPOCHAL_LOG_LEVEL="warning")
    env.update(EPOCHAL_ARTIFACTS_DIR=f"{workdir}/artifacts")
    env.update(EPOCHAL_EMBEDDED_BROKER_DIR=f"{workdir}/broker")
    command = [str(Path(sys.executable).parent / "epochal"), "serve", "--port", str(port)]
    with open(f"{workdir}/serve.log", "wb") as log:
        server = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                time.sleep(0.3)
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="epochal-shot-") as workdir, service(workdir) as url:
        ids = [
            httpx.post(f"{url}/v1/jobs", json=spec(name, units, lr)).json()["id"]
            for name, units, lr in (("digits-wide", 128, 0.001), ("digits-narrow", 32, 0.003))
        ]
        for job_id in ids:
            deadline = time.monotonic() + 300
            while httpx.get(f"{url}/v1/jobs/{job_id}").json()["status"] != "succeeded":
                assert time.monotonic() < deadline, f"job {job_id} did not succeed"
                time.sleep(0.5)
        job_page = (STATIC / "pages" / "job.js").is_file()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            if job_page:
                page.goto(f"{url}/#/jobs/{ids[0]}")
                page.wait_for_function(
                    """() => [...document.querySelectorAll('.uplot[data-points]')]
                         .some((p) => Number(p.dataset.points) > 0)"""
                )
            else:
                page.goto(f"{url}/#/jobs")
                page.get_by_test_id("jobs-table").wait_for()
            page.wait_for_timeout(300)  # the last frame of the charts
            page.screenshot(path=str(out))
            browser.close()
    print(f"{out}: {'the job page' if job_page else 'the jobs list'}, {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png")
