"""Errors as JSON: every failure answers `{"error": {"code": …, "message": …}}`.

`ApiError(status, code, message)` is what routes and dependencies raise. Malformed input is a
422 whose message names the field (the submitted value is never echoed: it may be a
password); a NUL character anywhere in the input a 422 (`reject_nul`, an app-wide dependency);
an unknown route a 404; a bug a 500 with no detail (logged, masked)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("omc.api")

CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
    429: "rate_limited",
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    fields = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    first = fields[0] if fields else {"field": "body", "message": "invalid"}
    return f"{first['field']}: {first['message']}", fields


NUL = "\x00"


async def reject_nul(request: Request) -> None:
    """A NUL character anywhere in the path, the query or a JSON body is malformed input
    (422): no database stores it in text (PostgreSQL refuses it), so it never gets that far."""
    query = request.query_params.multi_items()
    if NUL in request.url.path or any(NUL in k or NUL in v for k, v in query):
        raise ApiError(422, "invalid_input", "a NUL character is not allowed in the URL")
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await request.body()
        if b"\x00" in raw or b"\\u0000" in raw:
            raise ApiError(422, "invalid_input", "body: a NUL character is not allowed")


def install(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            body(exc.code, exc.message), status_code=exc.status, headers=exc.headers
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, fields = validation_message(exc)
        return JSONResponse(body("invalid_input", message, fields=fields), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # the body could not be parsed: malformed input
            return JSONResponse(
                body(
                    "invalid_input",
                    "body: not valid JSON",
                    fields=[{"field": "body", "message": "not valid JSON"}],
                ),
                status_code=422,
            )
        code = CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(body(code, message), status_code=exc.status_code, headers=exc.headers)

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        return JSONResponse(body("internal", "internal error"), status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)
