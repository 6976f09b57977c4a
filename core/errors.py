"""Domain errors. Each carries a stable `code`; `api` maps codes to HTTP statuses in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str | int, ...]


class EpochalError(Exception):
    code = "epochal_error"


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is (a path into the JSON) and what was expected."""

    loc: Loc
    msg: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


@dataclass
class SpecError(EpochalError):
    """A spec that cannot run. Holds every issue found, not just the first."""

    issues: list[SpecIssue] = field(default_factory=list)
    code = "invalid_spec"

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, i.loc)) or '<spec>'}: {i.msg}" for i in self.issues)


class UnknownNameError(EpochalError, ValueError):
    """A name that no registry knows. The message lists the names that exist."""

    code = "unknown_name"

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(known)}")


class NotFoundError(EpochalError):
    code = "not_found"


class ConflictError(EpochalError):
    code = "conflict"


class RequestInProgressError(ConflictError):
    """A repeat of an Idempotency-Key whose first request has not answered yet: send it again
    later (a client polls until the stored answer comes back)."""

    code = "request_in_progress"


class DivergenceError(EpochalError):
    """The loss became NaN or infinite: training diverged."""

    code = "divergence"


class NoSuggestionError(EpochalError):
    """The learning-rate range test found no rate to suggest for a `"suggested"` learning rate;
    `result` is its summary (how it ended)."""

    code = "no_suggestion"

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


class TrainingCancelled(EpochalError):
    code = "cancelled"


class InvalidArgumentError(EpochalError):
    """A request argument outside the spec (a query parameter, a cursor) that is malformed."""

    code = "invalid_argument"


class LeaseLost(EpochalError):
    """This worker no longer holds the job (it was silent too long and the job moved on)."""

    code = "lease_lost"


class TrainingReleased(EpochalError):
    """The worker is shutting down: the job goes back to the queue, this attempt not counted."""

    code = "released"


class UploadError(EpochalError):
    """An uploaded data set that cannot be used; each issue names where (`file`, a column, a
    row, an array, a query parameter) and what was expected."""

    code = "invalid_upload"

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__("; ".join(i.msg for i in issues))


class UnsupportedFormatError(UploadError):
    """The upload is none of the formats a data set may come in."""

    code = "unsupported_format"


class TooLargeError(EpochalError):
    """A request body past a configured size limit."""

    code = "too_large"


class QuotaExceededError(EpochalError):
    """A project is at one of its limits; `retry_after` (seconds) when waiting can help."""

    code = "quota_exceeded"

    def __init__(self, message: str, retry_after: int | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class IdempotencyKeyReusedError(EpochalError):
    """An `Idempotency-Key` sent again with a different request than the one it first named."""

    code = "idempotency_key_reused"


class TimedOutError(EpochalError):
    """A request that did not finish within its time limit; it was stopped and stored nothing."""

    code = "timed_out"
