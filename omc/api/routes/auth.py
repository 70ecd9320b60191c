"""`/api/v1/auth`: log in (tokens, or the dashboard's cookie session), refresh, log out, me.

Failed logins are limited per user name and client address (`omc.api.auth.ratelimit`):
beyond the limit the answer is 429 with `Retry-After`, before any password check. A wrong
name, a wrong password and a disabled user answer the same 401 after the same work."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from omc.api.auth import users
from omc.api.auth.deps import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    client_ip,
    current_user,
    state,
)
from omc.api.auth.ratelimit import RateLimited
from omc.api.auth.tokens import InvalidToken
from omc.api.auth.users import UserInfo
from omc.api.errors import ApiError
from omc.api.schemas.auth import Login, Me, Refresh, Session, TokenPair
from omc.api.schemas.common import ErrorBody
from omc.api.state import ApiState

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_LOGIN = "wrong user name or password"
LOGIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "Wrong user name or password"},
    429: {"model": ErrorBody, "description": "Too many failed logins"},
}


def _login(st: ApiState, form: Login, request: Request) -> UserInfo:
    ip = client_ip(request)
    try:
        st.limiter.check(form.username, ip)
    except RateLimited as exc:
        raise ApiError(
            429,
            "rate_limited",
            "too many failed logins: try again later",
            {"Retry-After": str(int(exc.retry_after))},
        ) from None
    user = users.authenticate(st.engine, form.username, form.password)
    if user is None:
        st.limiter.fail(form.username, ip)
        users.audit(st.engine, "login_failed", form.username, ip=ip)
        raise ApiError(401, "invalid_credentials", BAD_LOGIN, {"WWW-Authenticate": "Bearer"})
    st.limiter.succeed(form.username)
    users.audit(st.engine, "login", user.name, user_id=user.id, ip=ip)
    return user


def _pair(st: ApiState, user: UserInfo) -> TokenPair:
    return TokenPair(
        access_token=st.signer.issue(user.id, user.token_version, "access"),
        refresh_token=st.signer.issue(user.id, user.token_version, "refresh"),
        expires_in=int(st.signer.access_ttl.total_seconds()),
    )


@router.post("/login", response_model=TokenPair, responses=LOGIN_ERRORS)
def login(form: Login, request: Request, st: ApiState = Depends(state)) -> TokenPair:
    """Exchange a user name and password for an access token and a refresh token."""
    return _pair(st, _login(st, form, request))


@router.post("/refresh", response_model=TokenPair, responses=LOGIN_ERRORS)
def refresh(form: Refresh, st: ApiState = Depends(state)) -> TokenPair:
    """A new token pair for a valid refresh token (revoked by logout or disabling)."""
    try:
        claims = st.signer.decode(form.refresh_token, "refresh")
    except InvalidToken:
        raise ApiError(401, "invalid_token", "the refresh token is invalid or expired") from None
    user = users.get(st.engine, claims.user_id)
    if user is None or user.disabled or user.token_version != claims.version:
        raise ApiError(401, "invalid_token", "the refresh token is invalid or expired")
    return _pair(st, user)


@router.post("/session", response_model=Session, responses=LOGIN_ERRORS)
def session(
    form: Login, request: Request, response: Response, st: ApiState = Depends(state)
) -> Session:
    """Log in for the dashboard: an HttpOnly, SameSite=Strict cookie carries the access token;
    writes must send the returned CSRF token as the X-CSRF-Token header."""
    user = _login(st, form, request)
    token = st.signer.issue(user.id, user.token_version, "access")
    csrf = st.csrf_for(token)
    ttl = int(st.signer.access_ttl.total_seconds())
    secure = st.api.tls
    response.set_cookie(
        ACCESS_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=ttl,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return Session(username=user.name, csrf_token=csrf, expires_in=ttl)


@router.post("/logout", status_code=204, responses={401: {"model": ErrorBody}})
def logout(
    request: Request,
    response: Response,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> Response:
    """Revoke every token of the current user (all devices) and clear the cookies."""
    users.revoke_tokens(st.engine, user.id)
    users.audit(st.engine, "logout", user.name, user_id=user.id, ip=client_ip(request))
    out = Response(status_code=204)
    out.delete_cookie(ACCESS_COOKIE, path="/")
    out.delete_cookie(CSRF_COOKIE, path="/")
    return out


@router.get("/me", response_model=Me, responses={401: {"model": ErrorBody}})
def me(user: UserInfo = Depends(current_user)) -> Me:
    """Who the token belongs to."""
    return Me(id=user.id, username=user.name, is_admin=user.is_admin)
