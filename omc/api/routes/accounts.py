"""`/api/v1/accounts`: the caller's trading accounts (another user's name answers 404) — create
and list them; their positions, orders, fills, P&L with the equity series and the journal of
decisions with their reasons (`omc.floor.trading.reads`, read incrementally); Guard limits
(read, change: audited) and the kill switch (audited; `confirm` must be the account's name).
Paper sessions on an account: `omc.api.routes.sessions`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from omc.api import pagination
from omc.api.auth.deps import client_ip, current_user, state
from omc.api.auth.users import UserInfo, audit
from omc.api.errors import ApiError
from omc.api.jobs import json_safe
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.schemas.floor import (
    ACCOUNT_NAME,
    AccountIn,
    AccountOut,
    AccountPage,
    FillOut,
    FillPage,
    JournalEntryOut,
    JournalPage,
    KillIn,
    KillOut,
    LimitsIn,
    LimitsOut,
    OrderList,
    OrderOut,
    PnlOut,
    PositionList,
    PositionOut,
)
from omc.api.services import accounts
from omc.api.services.accounts import AccountRow
from omc.api.state import ApiState
from omc.floor.trading import reads
from omc.floor.trading.guard import GuardSettings, KillSwitchStore
from omc.floor.trading.limits import effective, overrides, set_overrides

router = APIRouter(prefix="/accounts", tags=["floor"])
NOT_YOURS = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such account of yours"},
}
NAME = {"pattern": ACCOUNT_NAME}


def owned_account(
    name: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> AccountRow:
    """The caller's account `name` (the path parameter), or 404."""
    found = accounts.owned(st.engine, user.id, name) if len(name) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", "no such account")
    return found


def _out(st: ApiState, row: AccountRow) -> AccountOut:
    def look(view: reads.AccountView) -> tuple[Any, str]:
        s = view.state
        return (s.book.equity() if s.started is not None else None), s.trading

    equity, trading = st.views.read(row.name, look)
    kill = KillSwitchStore(st.engine, account=row.name).get().active
    return AccountOut(
        name=row.name,
        mode=row.mode,
        cash=row.cash,
        created_at=row.created_at,
        equity=equity,
        trading=trading,
        kill=kill,
    )


@router.post(
    "",
    response_model=AccountOut,
    status_code=201,
    responses={**ERRORS, 409: {"model": ErrorBody, "description": "Name taken"}},
)
def create(
    body: AccountIn,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> AccountOut:
    """A new paper account of yours (its journal starts with its first session)."""
    try:
        row = accounts.create(st.engine, user.id, body.name, mode=body.mode, cash=body.cash)
    except accounts.AccountTaken as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    audit(
        st.engine,
        "account_created",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"account": row.name, "mode": row.mode, "cash": str(row.cash)},
    )
    return _out(st, row)


@router.get("", response_model=AccountPage, responses=ERRORS)
def page(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> AccountPage:
    """Your accounts, by name."""
    after = str(pagination.decode(cursor, 1)[0]) if cursor is not None else None
    rows, more = accounts.page(st.engine, user.id, limit=limit, after=after)
    nxt = pagination.encode(rows[-1].name) if more else None
    return AccountPage(items=[_out(st, r) for r in rows], next_cursor=nxt)


@router.get("/{name}", response_model=AccountOut, responses=NOT_YOURS)
def read(row: AccountRow = Depends(owned_account), st: ApiState = Depends(state)) -> AccountOut:
    """One of your accounts."""
    return _out(st, row)


@router.get("/{name}/positions", response_model=PositionList, responses=NOT_YOURS)
def positions(
    row: AccountRow = Depends(owned_account), st: ApiState = Depends(state)
) -> PositionList:
    """Open positions, marked at the latest journaled prices."""
    rows = st.views.read(row.name, lambda v: v.state.book.summary()["positions"])
    return PositionList(account=row.name, items=[PositionOut(**p) for p in rows])


@router.get("/{name}/orders", response_model=OrderList, responses=NOT_YOURS)
def orders(
    open_only: bool = Query(False, alias="open", description="Only the open orders."),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    row: AccountRow = Depends(owned_account),
    st: ApiState = Depends(state),
) -> OrderList:
    """The open orders, then the `limit` latest finished ones (newest first), each with the
    reason of the decision that placed it."""
    rows = st.views.read(row.name, lambda v: reads.orders(v, open_only=open_only, recent=limit))
    return OrderList(account=row.name, items=[OrderOut(**o) for o in rows])


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = pagination.decode(cursor, 1)[0]
    if not isinstance(value, int) or isinstance(value, bool):
        pagination.invalid()
    return value


@router.get("/{name}/fills", response_model=FillPage, responses=NOT_YOURS)
def fills(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    row: AccountRow = Depends(owned_account),
    st: ApiState = Depends(state),
) -> FillPage:
    """Fills, newest first."""
    before = _before(cursor)
    found, more = st.views.read(row.name, lambda v: reads.fills_page(v, before=before, limit=limit))
    nxt = pagination.encode(found[-1].seq) if more else None
    items = [FillOut(**{k: getattr(f, k) for k in FillOut.model_fields}) for f in found]
    return FillPage(account=row.name, items=items, next_cursor=nxt)


@router.get("/{name}/pnl", response_model=PnlOut, responses=NOT_YOURS)
def pnl(
    points: int = Query(500, ge=2, le=10000, description="At most this many equity points."),
    row: AccountRow = Depends(owned_account),
    st: ApiState = Depends(state),
) -> PnlOut:
    """Realised (average cost) and unrealised P&L, fees, drawdown and the equity series."""
    found = st.views.read(row.name, lambda v: reads.pnl(v, points=points))
    found["equity_series"] = [{"ts": ts, "equity": eq} for ts, eq in found["equity_series"]]
    return PnlOut(account=row.name, **found)


@router.get("/{name}/journal", response_model=JournalPage, responses=NOT_YOURS)
def journal(
    kind: list[str] | None = Query(
        None, description="Only these kinds (default: all but bars and order updates)."
    ),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    row: AccountRow = Depends(owned_account),
    st: ApiState = Depends(state),
) -> JournalPage:
    """Decisions with their reasons (targets, signals), orders, Guard denials and warnings,
    trading-state moves and kills, newest first."""
    kinds = tuple(k[:24] for k in kind) if kind else reads.JOURNAL_KINDS
    items, more = reads.journal_page(
        st.engine, row.name, kinds=kinds, before=_before(cursor), limit=limit
    )
    nxt = pagination.encode(items[-1]["seq"]) if more else None
    return JournalPage(
        account=row.name, items=[JournalEntryOut(**i) for i in items], next_cursor=nxt
    )


# ---------------------------------------------------------------------- Guard limits
def _limits(st: ApiState, name: str) -> LimitsOut:
    found = effective(st.engine, name, GuardSettings().limits())
    return LimitsOut(
        account=name,
        limits=found.model_dump(mode="json"),
        overridden=sorted(overrides(st.engine, name)),
    )


@router.get("/{name}/limits", response_model=LimitsOut, responses=NOT_YOURS)
def limits(row: AccountRow = Depends(owned_account), st: ApiState = Depends(state)) -> LimitsOut:
    """The Guard limits this account's sessions use: the configured ones (`OMC_GUARD_*`)
    with the account's own on top."""
    return _limits(st, row.name)


@router.put("/{name}/limits", response_model=LimitsOut, responses=NOT_YOURS)
def change_limits(
    body: LimitsIn,  # type: ignore[valid-type]
    request: Request,
    row: AccountRow = Depends(owned_account),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> LimitsOut:
    """Change some limits (the others stay); sessions started after use them. Audited."""
    changes = body.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    try:
        before, after = set_overrides(st.engine, row.name, changes, GuardSettings().limits())
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    diff = {k: {"from": old[k], "to": new[k]} for k in new if old[k] != new[k]}
    audit(
        st.engine,
        "limits_changed",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"account": row.name, "changes": diff},
    )
    return _limits(st, row.name)


# ---------------------------------------------------------------------- kill switch
@router.get("/{name}/kill", response_model=KillOut, responses=NOT_YOURS)
def kill_state(row: AccountRow = Depends(owned_account), st: ApiState = Depends(state)) -> KillOut:
    """Whether the account's kill switch (or the global one) is on."""
    found = KillSwitchStore(st.engine, account=row.name).get()
    return KillOut(
        account=row.name,
        active=found.active,
        flatten=found.flatten,
        reason=found.reason,
        updated_at=found.updated_at,
    )


@router.post("/{name}/kill", response_model=KillOut, responses=NOT_YOURS)
def kill(
    body: KillIn,
    request: Request,
    row: AccountRow = Depends(owned_account),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> KillOut:
    """Switch the account's kill switch on (cancel its open orders and, with `flatten`,
    close its positions; its running session stops) or off. `confirm` must be the account's
    name. Audited."""
    from omc.floor.trading.kill import switch_account

    if body.confirm != row.name:
        raise ApiError(422, "invalid_input", "confirm: type the account's name to confirm")
    report = switch_account(
        st.engine,
        row.name,
        on=body.on,
        flatten=body.flatten,
        reason=f"{user.name}: {body.reason}",
        wait_s=st.api.kill_wait_s,
    )
    audit(
        st.engine,
        "kill_on" if body.on else "kill_off",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"account": row.name, "flatten": body.flatten, "reason": body.reason[:200]},
    )
    found = KillSwitchStore(st.engine, account=row.name).get()
    return KillOut(
        account=row.name,
        active=found.active,
        flatten=found.flatten,
        reason=found.reason,
        updated_at=found.updated_at,
        cancelled=report.get("cancelled"),
        flattened=json_safe(report.get("flattened")),
        acknowledged=report.get("acknowledged"),
        error=report.get("error"),
    )
