"""Reading what the broker holds (core.running.broker_queues) from a real Redis: the embedded
broker's Unix socket, and messages that are not a train task's."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import redis

from cli.embedded import EmbeddedBroker
from core.running.broker_queues import RedisQueues, job_id_of, redis_url


def message(task: str, args: list) -> dict:
    body = base64.b64encode(json.dumps([args, {}, {}]).encode()).decode()
    return {"body": body, "headers": {"task": task, "id": "m-1"}, "properties": {}}


def test_kombus_socket_url_is_redis_pys() -> None:
    assert redis_url("redis+socket:///tmp/b/redis.socket") == "unix:///tmp/b/redis.socket"
    assert redis_url("redis://host:6379/2") == "redis://host:6379/2"


def test_only_a_train_tasks_message_names_a_job() -> None:
    assert job_id_of(message("epochal.train", ["j-1"])) == "j-1"
    assert job_id_of(message("celery.ping", ["j-1"])) is None
    assert job_id_of({"body": "not base64 json", "headers": {"task": "epochal.train"}}) is None
    assert job_id_of({"headers": {}}) is None


def test_the_embedded_broker_is_read_through_its_socket(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    try:
        client = redis.Redis.from_url(redis_url(broker.url))
        for raw in (message("epochal.train", ["a"]), message("other", ["x"])):
            client.lpush("p:cpu", json.dumps(raw))
        client.lpush("p:cpu", b"no message of kombu's")
        client.lpush("p:cpu", json.dumps(message("epochal.train", ["b"])))
        queues = RedisQueues.connect(broker.url, "p:")
        held = queues.held(["cpu", "gpu"], delivered_since=0)
        queues.close()
        assert [job_id for job_id, _ in held.waiting["cpu"]] == ["a", "b"]  # next out first
        assert held.waiting["gpu"] == [] and held.delivered == set()
    finally:
        broker.close()
