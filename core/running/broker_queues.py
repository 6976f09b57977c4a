"""What the broker holds for each job, read from Redis as kombu lays it out (core imports no Celery).

kombu's Redis transport keeps a queue as a list under `<prefix><queue>`: a send pushes on the
left, workers pop from the right. A message delivered to a worker and not yet acknowledged is
in the hash `<prefix>unacked` (value: [message, exchange, routing key]), with its delivery time
in the sorted set `<prefix>unacked_index`. From its send to its acknowledgement a message is
in one of the two, but for the instant between a worker's pop and its write to the hash. A
message is Celery's protocol 2: a JSON envelope whose `headers` name the task and the
message's id, and whose base64 `body` is [args, kwargs, embed]; the train task's only
argument is the job id. Epochal sends no message priority, so each queue is that one list.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from core.dispatch import TRAIN_TASK

# Moves a message just sent (found by the caller) to its place: right behind the message
# ARGV[2] when that one still waits, otherwise at the right end, where workers take the next.
# Nothing moves when a worker took the message meanwhile (LREM finds nothing).
_PLACE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' and redis.call('LINSERT', KEYS[1], 'BEFORE', ARGV[2], ARGV[1]) > 0 then
  return 1
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""
NEWEST = 200  # how far from the left end a message just sent is looked for


@dataclass
class Held:
    """The broker's messages for train tasks: per queue, the waiting ones in the order workers
    will take them ([(job id, raw message)], next first); and the job ids of the messages
    delivered to a worker since `delivered_since` (epoch seconds) and not yet acknowledged."""

    waiting: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)


class RedisQueues:
    def __init__(self, client: redis.Redis, key_prefix: str = ""):
        self.client = client
        self.prefix = key_prefix
        self._place = client.register_script(_PLACE)

    @classmethod
    def connect(cls, broker_url: str, key_prefix: str = "", timeout: float = 5.0) -> RedisQueues:
        client = redis.Redis.from_url(
            redis_url(broker_url), socket_timeout=timeout, socket_connect_timeout=timeout
        )
        return cls(client, key_prefix)

    def close(self) -> None:
        self.client.close()

    def held(self, queues: Iterable[str], *, delivered_since: float) -> Held:
        """One consistent read (a MULTI) of the queues' lists and of the unacknowledged messages."""
        queues = list(queues)
        with self.client.pipeline(transaction=True) as pipe:
            for queue in queues:
                pipe.lrange(self.prefix + queue, 0, -1)
            pipe.hgetall(self.prefix + "unacked")
            pipe.zrangebyscore(self.prefix + "unacked_index", delivered_since, "+inf")
            *lists, unacked, recent = pipe.execute()
        held = Held()
        for queue, raws in zip(queues, lists, strict=True):
            # LRANGE lists left (newest) to right (next out): reversed, the order of delivery.
            pairs = ((job_id_of(_parse(raw)), raw) for raw in reversed(raws))
            held.waiting[queue] = [(job_id, raw) for job_id, raw in pairs if job_id]
        for tag in recent:
            entry = _parse(unacked.get(tag, b"null"))  # [message, exchange, routing key]
            if isinstance(entry, list) and entry and (job_id := job_id_of(entry[0])):
                held.delivered.add(job_id)
        return held

    def place(self, queue: str, message_id: str, behind: bytes | None) -> bytes | None:
        """Move the message `message_id`, just sent to `queue`, from the back of the queue to
        right behind the waiting message `behind` (None, or gone: to the front). Returns the
        message as stored, or None when a worker took it meanwhile (it is not to be found)."""
        key = self.prefix + queue
        for raw in self.client.lrange(key, 0, NEWEST - 1):
            message = _parse(raw)
            if isinstance(message, dict) and (message.get("headers") or {}).get("id") == message_id:
                return raw if self._place(keys=[key], args=[raw, behind or b""]) else None
        return None


def job_id_of(message: Any) -> str | None:
    """The job id a train task's message carries; None for any other message."""
    try:
        if message["headers"]["task"] != TRAIN_TASK:
            return None
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        return str(args[0])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _parse(raw: bytes) -> Any:
    """A message as JSON; None for anything else in the list (no message of kombu's)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def redis_url(broker_url: str) -> str:
    """kombu's spelling of a Unix socket (`redis+socket:///path`, the embedded broker's) in
    redis-py's (`unix:///path`); other URLs unchanged."""
    for scheme in ("redis+socket://", "socket://"):
        if broker_url.startswith(scheme):
            return "unix://" + broker_url.removeprefix(scheme)
    return broker_url
