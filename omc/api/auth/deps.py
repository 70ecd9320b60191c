"""FastAPI dependencies: the app state, and the current user from `Authorization: Bearer …`
or from the dashboard's HttpOnly cookie — whose writes (POST, PUT, PATCH, DELETE) also need
the `X-CSRF-Token` header, equal to the `omc_csrf` cookie and bound to the session token."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request

from omc.api.auth import users
from omc.api.auth.tokens import InvalidToken
from omc.api.auth.users import UserInfo
from omc.api.errors import ApiError
from omc.api.state import ApiState

ACCESS_COOKIE = "omc_access"
CSRF_COOKIE = "omc_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BEARER = {"WWW-Authenticate": "Bearer"}


def state(request: Request) -> ApiState:
    found: ApiState = request.app.state.omc
    return found


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "not_authenticated", message, BEARER)


def _check_csrf(request: Request, st: ApiState, token: str) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = st.csrf_for(token)
    if not (
        header and hmac.compare_digest(header, cookie) and hmac.compare_digest(header, expected)
    ):
        raise ApiError(
            403, "csrf_failed", "a cookie-authenticated write needs the X-CSRF-Token header"
        )


def current_user(request: Request, st: ApiState = Depends(state)) -> UserInfo:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
    else:
        token = request.cookies.get(ACCESS_COOKIE, "")
        if not token:
            raise _unauthenticated("log in first: no token")
        if request.method not in SAFE_METHODS:
            _check_csrf(request, st, token)
    try:
        claims = st.signer.decode(token, "access")
    except InvalidToken:
        raise _unauthenticated("the token is invalid or expired") from None
    user = users.get(st.engine, claims.user_id)
    if user is None or user.disabled or user.token_version != claims.version:
        raise _unauthenticated("the token is invalid or expired")
    return user


def admin_user(user: UserInfo = Depends(current_user)) -> UserInfo:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only an admin may do this")
    return user
