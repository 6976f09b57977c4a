"""Server-sent events (the WHATWG `text/event-stream` format) read line by line, as
GET /v1/jobs/{id}/events sends them: `event:`, `id:` and `data:` fields, a blank line ending
each event, `:` starting a comment (the server's keep-alive)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from epochal_client.models import Event


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a stream's lines (without their line endings). An event without data,
    and one cut off before its blank line, is dropped, as a browser's EventSource does."""
    name, event_id, data = "message", None, []
    for line in lines:
        if not line:
            if data:
                yield Event(event=name, id=event_id, data=json.loads("\n".join(data)))
            name, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue  # a comment: keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            event_id = value
