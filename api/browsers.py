"""What a web page may do with the API: CORS for the configured origins (none by default), and
no state change through a request that a browser sends without asking first (a preflight).

A page on any site can make a browser send a POST whose Content-Type is missing or one of the
CORS-safelisted ones (a form, `text/plain`), and the browser sends it before CORS is consulted.
So such a request is refused (`415`) unless it carries an `Authorization` header, which no
browser adds to a cross-site request without a preflight. Every other type needs a preflight,
which fails for origins CORS does not allow. A state-changing request that names an `Origin`
that is neither allowed nor the API's own is refused too (`403`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from core.settings import Settings, is_loopback

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})  # DELETE is never sent without a preflight
SAFELISTED = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
UPLOAD_TYPES = (
    "text/csv, application/octet-stream, application/x-npz, application/vnd.apache.parquet"
)
ACCEPTED = {
    "/v1/datasets": f"the file's type ({UPLOAD_TYPES})",
}
JSON = "application/json (application/yaml for a spec), also when there is no body"


def install(app: FastAPI, settings: Settings) -> None:
    """Added after the other middleware, so CORS answers preflights and marks every answer."""
    app.add_middleware(BrowserGuardMiddleware, allowed=settings.cors_origins)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Retry-After", "Location"],
            max_age=600,
        )


class BrowserGuardMiddleware:
    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()):
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        keyed = "authorization" in headers
        if origin is not None and not self._allows(origin, headers.get("host", ""), keyed):
            error = {
                "loc": ["header", "origin"],
                "msg": f"expected this API's own origin or one of EPOCHAL_CORS_ORIGINS; "
                f"received {origin!r}",
                "type": "origin",
            }
            detail = f"requests from {origin!r} may not change anything here"
            await problem("forbidden_origin", detail, [error])(scope, receive, send)
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if (
            scope["method"] in WITH_BODY
            and scope["path"].startswith("/v1/")
            and (not content_type or content_type in SAFELISTED)
            and "authorization" not in headers
        ):
            expected = ACCEPTED.get(scope["path"].rstrip("/"), JSON)
            received = repr(content_type) if content_type else "none"
            error = {
                "loc": ["header", "content-type"],
                "msg": f"expected {expected}; received {received}",
                "type": "content_type",
            }
            detail = (
                f"{scope['method']} needs a Content-Type header of {expected}: "
                "a web page can send this request from any site"
            )
            await problem("unsupported_media_type", detail, [error])(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allows(self, origin: str, host: str, keyed: bool) -> bool:
        """An allowed origin, or the API's own pages (/docs, the dashboard) on a loopback
        address. Same-origin on another host name is not enough without a key: a DNS-rebinding
        page has the API's Host too, but not the key that the dashboard keeps in its own
        origin's storage (and a key it makes up is refused by the auth that follows)."""
        if "*" in self.allowed or origin.rstrip("/") in self.allowed:
            return True
        own = bool(host) and urlsplit(origin).netloc.lower() == host.lower()
        return own and (keyed or is_loopback(urlsplit(origin).hostname or ""))
