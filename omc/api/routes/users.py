"""`/api/v1/users` (admins only; anyone else 403): list, create, disable — the same service
as `omc users` (`omc.api.auth.users`), each action audited with the admin as actor."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from omc.api import pagination
from omc.api.auth import users
from omc.api.auth.deps import admin_user, state
from omc.api.auth.users import UserError, UserExists, UserInfo
from omc.api.errors import ApiError
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.schemas.users import UserIn, UserOut, UserPage
from omc.api.state import ApiState

router = APIRouter(prefix="/users", tags=["users"])

ADMIN = {**ERRORS, 403: {"model": ErrorBody, "description": "Not an admin"}}


def _out(u: UserInfo) -> UserOut:
    return UserOut(
        id=u.id, username=u.name, is_admin=u.is_admin, disabled=u.disabled, created_at=u.created_at
    )


@router.get("", response_model=UserPage, responses=ADMIN)
def page(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    admin: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> UserPage:
    """Every user by name."""
    after = str(pagination.decode(cursor, 1)[0]) if cursor is not None else None
    found = [u for u in users.list_users(st.engine) if after is None or u.name > after]
    items = found[:limit]
    nxt = pagination.encode(items[-1].name) if len(found) > limit else None
    return UserPage(items=[_out(u) for u in items], next_cursor=nxt)


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    responses={**ADMIN, 409: {"model": ErrorBody, "description": "Name taken"}},
)
def create(
    body: UserIn, admin: UserInfo = Depends(admin_user), st: ApiState = Depends(state)
) -> UserOut:
    """Create a user (the password is stored only as its argon2 hash)."""
    try:
        made = users.create_user(
            st.engine,
            body.username,
            body.password.get_secret_value(),
            admin=body.is_admin,
            actor=admin.name,
        )
    except UserExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except UserError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    return _out(made)


@router.post(
    "/{name}/disable",
    response_model=UserOut,
    responses={**ADMIN, 404: {"model": ErrorBody, "description": "No such user"}},
)
def disable(
    name: str = Path(min_length=1, max_length=64),
    admin: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> UserOut:
    """Disable a user: no more logins, every token of theirs stops working."""
    if name == admin.name:
        raise ApiError(409, "conflict", "you cannot disable yourself")
    if users.find(st.engine, name) is None:
        raise ApiError(404, "not_found", "no such user")
    return _out(users.disable_user(st.engine, name, actor=admin.name))
