"""What the client raises."""

from __future__ import annotations

from typing import Any


class EpochalError(Exception):
    """Anything the client raises on purpose."""


class EpochalConnectionError(EpochalError):
    """The server could not be reached, even after the retries."""


class EpochalAPIError(EpochalError):
    """The API answered an error: an `application/problem+json` body (RFC 9457)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        type_: str | None = None,
    ):
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.type = type_
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{self.status} {self.title}: {self.detail}"]
        for e in self.errors:
            loc = ".".join(str(p) for p in e.get("loc", [])) or "(spec)"
            lines.append(f"  {loc}: {e.get('msg', '')}")
        return "\n".join(lines)
