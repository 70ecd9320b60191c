"""The web dashboard: one page (`/`) and its static assets (`/static/...`), all shipped
inside the package (no CDN, no Node.js). The page is plain HTML, CSS and ES modules that call
the `/api/v1` routes with the HttpOnly session cookie of `POST /api/v1/auth/session` and send
the CSRF token back as `X-CSRF-Token` on writes.

`install(app)` adds the routes to a FastAPI app (the API's `create_app` calls it). Every
answer carries a Content-Security-Policy that allows only this origin, so the page can load
nothing from anywhere else."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class _Secured:
    """Adds the security headers to every answer of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def install(app: FastAPI) -> None:
    """Serve the dashboard at `/` and its assets at `/static/` (not in the OpenAPI schema)."""
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(index, headers={**HEADERS, "cache-control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/icon.svg", status_code=308)

    app.mount("/static", _Secured(StaticFiles(directory=STATIC)), name="static")
