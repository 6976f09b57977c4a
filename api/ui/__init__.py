"""The dashboard: static files served by the API itself, at `/` (the page) and `/ui/` (its
scripts, styles and the vendored uPlot). No build step, no CDN: what is in `static/` is what the
browser gets. The page reads only the public `/v1` API, with the key the user gives it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
# The page's own files only: no inline script, no other origin (uPlot sets styles from script,
# which CSP's style-src does not govern; its stylesheet is a file of ours).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated each load: a new release is seen at once
}


class UiFiles(StaticFiles):
    """The page's files with the page's headers (a script framed or sniffed elsewhere gets the
    same refusal), and without index.html: the page itself is served at `/` only."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).name == "index.html":
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    app.mount("/ui", UiFiles(directory=STATIC), name="ui")
