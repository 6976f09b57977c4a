"""Who is calling: the API key of a request, its role, and the project it acts on.

Every /v1 route depends on `caller`. A request with `Authorization: Bearer <key>` acts as its
key, whatever the settings; one without a key is refused (401) when keys are required, and
otherwise acts as an admin of the `default` project. Keys are required when EPOCHAL_AUTH is
`required`, and also, while it is unset, for any request that does not both arrive on and come
from a loopback address (so a port published beyond the machine never serves keyless).

Roles by operation: a read key may GET; a write key may also POST and DELETE; an admin key may
also manage keys and name any project with `?project=` (`*`: every project, for reads).
A checked key is trusted for EPOCHAL_AUTH_CACHE_SECONDS, so a revoked key stops within seconds
and most requests cost no database round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from core.errors import EpochalError, InvalidArgumentError
from core.settings import Settings, is_loopback
from core.store import keys as key_store
from core.store.keys import KeyInfo, Role
from core.store.models import DEFAULT_PROJECT

ALL_PROJECTS = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UnauthenticatedError(EpochalError):
    code = "unauthorized"


class ForbiddenError(EpochalError):
    code = "forbidden"


@dataclass(frozen=True)
class Caller:
    project: str | None  # None: every project (an admin reading with ?project=*)
    role: Role
    key_id: str | None = None  # None: a keyless local request

    @property
    def owner(self) -> str:
        """The project that what this request makes belongs to."""
        if self.project is None:
            raise InvalidArgumentError(
                "project: '*' names every project, for reads only; name one project to create "
                "or change something in it"
            )
        return self.project


class KeyCache:
    """Checked keys (and unknown ones) by hash, each trusted for `ttl` seconds."""

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[KeyInfo | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[str], KeyInfo | None]) -> KeyInfo | None:
        digest = key_store.hash_secret(key)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = load(key)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (info, now + self.ttl)
        return info


def _loopback(address: tuple[str, int] | None) -> bool:
    return address is not None and is_loopback(address[0])


def keys_needed(settings: Settings, request: Request) -> bool:
    if settings.auth == "off":
        return False
    if settings.auth_required:
        return True
    return not (_loopback(request.scope.get("server")) and _loopback(request.scope.get("client")))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError(
            "Authorization: expected 'Bearer <API key>'. Received a header of another form"
        )
    return token.strip()


def needed_role(request: Request) -> Role:
    """By the matched route's own path, never the URL's (a root path or a mount would shift
    the URL, not the route)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        raise RuntimeError("caller() runs as a route's dependency, after routing")
    if path.startswith("/v1/keys"):
        return Role.ADMIN
    return Role.READ if request.method in SAFE_METHODS else Role.WRITE


def caller(
    request: Request,
    project: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^(\*|[a-z0-9][a-z0-9_.-]{0,63})$",
            description="admin keys: act on this project ('*': every project, reads only)",
        ),
    ] = None,
) -> Caller:
    state = request.app.state
    token = _bearer(request)
    if token is not None:
        info = _lookup(request, token)
        if info is None:
            raise UnauthenticatedError("the API key is unknown or revoked")
        me = Caller(info.project, info.role, info.id)
    elif keys_needed(state.settings, request):
        raise UnauthenticatedError(
            "an API key is required: send 'Authorization: Bearer <key>' (epochal keys create "
            "makes one)"
        )
    else:
        me = Caller(DEFAULT_PROJECT, Role.ADMIN)
    needed = needed_role(request)
    if not me.role.allows(needed):
        raise ForbiddenError(
            f"this {me.role.value} key cannot {request.method} {request.url.path}: "
            f"a {needed.value} key can"
        )
    if project is None or project == me.project:
        return me
    if me.role is not Role.ADMIN:
        raise ForbiddenError(
            f"project: this key acts on project {me.project!r}; only an admin key names another"
        )
    if project == ALL_PROJECTS:
        return Caller(None, me.role, me.key_id)
    return Caller(key_store.check_project_name(project), me.role, me.key_id)


def key_still_valid(request: Request) -> Callable[[], bool]:
    """For a long answer (an event stream): whether the request's key still works, read
    through the cache, so a revoked key ends the stream within EPOCHAL_AUTH_CACHE_SECONDS."""
    token = _bearer(request)
    if token is None:
        return lambda: True
    return lambda: _lookup(request, token) is not None


def _lookup(request: Request, token: str) -> KeyInfo | None:
    """The key, through the cache: the store is read once per key per cache period."""

    def load(key: str) -> KeyInfo | None:
        with request.app.state.sessions() as session:
            return key_store.find_key(session, key)

    return request.app.state.key_cache.get(token, load)


CallerDep = Annotated[Caller, Depends(caller)]
