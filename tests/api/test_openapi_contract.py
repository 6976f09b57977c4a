"""The OpenAPI document is the contract: schemathesis drives every operation of the real app
(real SQLite and PostgreSQL stores, the test Redis broker) with schema-valid and invalid
requests, through the same engine as `schemathesis run --checks all` (examples, coverage and
fuzzing phases, every built-in check, a fixed seed): no 5xx, every status and content type
declared, bodies matching their schemas, valid data accepted, invalid data refused, `Allow`
right on 405."""

from __future__ import annotations

import time

import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from api.app import create_app
from core.settings import Settings

# Per operation, phase and store: every operation is still driven on both stores through the
# examples phase and positive and negative fuzzing, with a fixed seed. 80 took ~70 s a store on
# 2 cores; deeper fuzzing is a `schemathesis run` away, not every test run's cost.
EXAMPLES = 30

# Where the schema cannot state what the route accepts, a schema-valid request may be refused
# with the 4xx its problem names: a spec or sweep that cannot run (the network is checked by
# building it), a file that is no data set, inputs of the wrong shape for the model, a cursor
# that is not a next_cursor (opaque by design; 422), job ids to compare that repeat one.
REFUSES_VALID = {
    "POST /v1/jobs": ["422"],
    "POST /v1/sweeps": ["422"],
    "POST /v1/datasets": ["413", "415", "422"],
    "POST /v1/jobs/{job_id}/clone": ["422"],
    "POST /v1/jobs/{job_id}/resume": ["422"],
    "POST /v1/jobs/{job_id}/predict": ["422"],
    "POST /v1/jobs/{job_id}/evaluate": ["422"],
    "GET /v1/jobs": ["422"],
    "GET /v1/sweeps": ["422"],
    "GET /v1/compare": ["422"],
    "POST /v1/specs/from-keras": ["422"],  # `model` is any object: only a Keras model's passes
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' default


def run_schemathesis(settings: Settings) -> tuple[list[str], dict[str, int]]:
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20261207,
            "workers": 1,
            "continue-on-failure": True,
            "cache": {"enabled": False},
            "max-stream-events": 5,
            "request-timeout": 30,
            # NUL bytes included: PostgreSQL cannot store them, so they must be a 422 or 404.
            "generation": {"max-examples": EXAMPLES, "database": "none", "allow-x00": True},
            # The coverage phase alone sends ~90,000 requests (10 minutes a store on 2 cores);
            # examples and fuzzing (positive and negative) keep the run to minutes.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": ACCEPTED + statuses}
                    },
                }
                for name, statuses in REFUSES_VALID.items()
            ],
        }
    )
    app = create_app(settings)
    failures: list[str] = []
    counts: dict[str, float] = {"operations": 0, "cases": 0}
    with TestClient(app):  # runs the lifespan
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                counts["cases"] += len(event.recorder.interactions)
                key = f"{event.phase.name}_s"
                counts[key] = round(counts.get(key, 0) + event.elapsed_time, 1)
                for case_id, checks in event.recorder.checks.items():
                    for check in checks:
                        if check.failure_info is not None:
                            case = event.recorder.cases[case_id].value
                            sent = event.recorder.interactions.get(case_id)
                            answer = sent.response.status_code if sent and sent.response else None
                            failures.append(
                                f"{event.label} [{check.name}] {case.method} {case.formatted_path}"
                                f" {case.query or ''} {case.headers or ''} -> {answer}: "
                                f"{check.failure_info.failure.title}"
                                f"\n    {check.failure_info.failure.message[:300]}"
                            )
            elif isinstance(event, events.NonFatalError | events.FatalError):
                failures.append(
                    f"error: {event.info.format()[:2000]}"
                    if hasattr(event, "info")
                    else repr(event)
                )
            elif isinstance(event, events.SuiteFinished):
                pass
    counts["operations"] = len(list(schema.get_all_operations()))
    return failures, counts


def test_every_answer_is_the_one_the_openapi_document_promises(settings: Settings) -> None:
    started = time.monotonic()
    failures, counts = run_schemathesis(settings)
    print(f"schemathesis: {counts}, {time.monotonic() - started:.1f}s, {len(failures)} failures")
    assert not failures, "\n".join(dict.fromkeys(failures))


def test_a_405_names_every_method_of_the_path(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.put("/v1/datasets/anything", json={})
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
        assert r.headers["content-type"] == "application/problem+json"
        assert client.patch("/v1/jobs", json={}).headers["allow"] == "GET, POST"


def test_every_error_status_is_declared_as_a_problem(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    assert document["paths"]["/v1/datasets/{name}"]["delete"]["responses"].keys() >= {
        "204",
        "401",
        "403",
        "404",
        "409",
        "503",
    }
    assert "429" in document["paths"]["/v1/jobs/{job_id}/clone"]["post"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
