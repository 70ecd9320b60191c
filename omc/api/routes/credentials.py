"""`/api/v1/credentials`: the caller's own exchange and LLM keys (bring your own keys).

Thin over `omc.api.vault` (storage, encryption, audit) and `omc.api.providers` (the check
against the provider). Answers are masked; a key the provider refuses answers 422 and is not
stored; another user's credential answers 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from omc.api import pagination, providers, vault
from omc.api.auth.deps import client_ip, current_user, state
from omc.api.auth.users import UserInfo
from omc.api.errors import ApiError
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.schemas.credentials import (
    CheckOut,
    CredentialIn,
    CredentialOut,
    CredentialPage,
    KeyIn,
)
from omc.api.state import ApiState
from omc.api.vault import CredentialInfo, Material

router = APIRouter(prefix="/credentials", tags=["credentials"])

CredentialId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Responses = dict[int | str, dict[str, object]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "No such credential of yours"}}
REFUSED: Responses = {
    422: {"model": ErrorBody, "description": "Malformed, or the provider refused the key"}
}


def _out(c: CredentialInfo) -> CredentialOut:
    return CredentialOut(
        id=c.id,
        kind=c.kind,
        name=c.name,
        hint=c.hint,
        endpoint=c.endpoint,
        created_at=c.created_at,
        rotated_at=c.rotated_at,
        checked_at=c.checked_at,
        last_used_at=c.last_used_at,
    )


def _material(body: KeyIn) -> Material:
    secret = body.api_secret.get_secret_value() if body.api_secret else None
    return Material(body.api_key.get_secret_value(), secret, body.base_url)


def _checker(st: ApiState) -> vault.Checker:
    return lambda kind, material: providers.check(kind, material, st.settings)


def _failed(exc: vault.VaultError, kept: str = "nothing was stored") -> ApiError:
    if isinstance(exc, vault.CredentialNotFound):
        return ApiError(404, "not_found", "no such credential")
    if isinstance(exc, vault.NameTaken):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, vault.Undecryptable):
        return ApiError(409, "undecryptable", str(exc))
    if isinstance(exc, vault.CheckFailed):
        return ApiError(422, "credential_refused", f"{exc}; {kept}")
    return ApiError(422, "invalid_input", str(exc))


@router.get("", response_model=CredentialPage, responses=ERRORS)
def page(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> CredentialPage:
    """Your credentials by name, masked (never a key or secret)."""
    after = str(pagination.decode(cursor, 1)[0]) if cursor is not None else None
    items, more = vault.listing(st.engine, st.vault, user.id, limit=limit, after=after)
    nxt = pagination.encode(items[-1].name) if more else None
    return CredentialPage(items=[_out(c) for c in items], next_cursor=nxt)


@router.post(
    "",
    response_model=CredentialOut,
    status_code=201,
    responses={**ERRORS, **REFUSED, 409: {"model": ErrorBody, "description": "Name taken"}},
)
def create(
    body: CredentialIn,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> CredentialOut:
    """Save a key: checked against the provider first (read-only), then stored encrypted."""
    try:
        kind = vault.kind_of(body.kind, body.provider)
        saved = vault.save(
            st.engine,
            st.vault,
            user,
            kind,
            body.name,
            _material(body),
            check=_checker(st),
            ip=client_ip(request),
        )
    except vault.VaultError as exc:
        raise _failed(exc) from None
    return _out(saved)


@router.post(
    "/{credential_id}/rotate",
    response_model=CredentialOut,
    responses={**ERRORS, **REFUSED, **NOT_FOUND},
)
def rotate(
    credential_id: CredentialId,
    body: KeyIn,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> CredentialOut:
    """Replace the stored key with a new one (checked first; if refused the old one stays)."""
    try:
        rotated = vault.rotate(
            st.engine,
            st.vault,
            user,
            credential_id,
            _material(body),
            check=_checker(st),
            ip=client_ip(request),
        )
    except vault.VaultError as exc:
        raise _failed(exc, "the stored key is unchanged") from None
    return _out(rotated)


@router.post("/{credential_id}/check", response_model=CheckOut, responses={**ERRORS, **NOT_FOUND})
def check(
    credential_id: CredentialId,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> CheckOut:
    """Ask the provider again whether it accepts the stored key."""
    try:
        found, problem = vault.recheck(
            st.engine, st.vault, user, credential_id, check=_checker(st), ip=client_ip(request)
        )
    except vault.VaultError as exc:
        raise _failed(exc) from None
    return CheckOut(ok=problem is None, message=problem or "accepted", credential=_out(found))


@router.delete("/{credential_id}", status_code=204, responses={**ERRORS, **NOT_FOUND})
def remove(
    credential_id: CredentialId,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> Response:
    """Delete a credential for good."""
    try:
        vault.remove(st.engine, user, credential_id, ip=client_ip(request))
    except vault.VaultError as exc:
        raise _failed(exc) from None
    return Response(status_code=204)
