"""Shared response shapes: the error body, a page of items with the next cursor."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "No or an invalid token"},
    422: {"model": ErrorBody, "description": "Malformed input (names the field)"},
}
