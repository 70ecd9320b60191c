"""`/api/v1/alerts`: alerts raised from catalyst events (shared by every logged-in user),
newest first with filters, and their deliveries to the notifiers
(`omc.ledgers.catalyst.alerts.alerts_page`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from omc.api import pagination
from omc.api.auth.deps import current_user, state
from omc.api.auth.users import UserInfo
from omc.api.schemas.common import ERRORS
from omc.api.state import ApiState
from omc.core.masking import mask_text
from omc.core.time import parse_utc
from omc.ledgers.catalyst.alerts import alerts_page

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    source: str
    event_id: str
    kind: str
    coin: str
    title: str
    coins: list[str] | None
    url: str | None
    published_at: datetime | None
    raised_at: datetime
    deliveries: dict[str, Any] = Field(description="Per notifier: status, attempts, at, error.")


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    alert_id: int
    title: str
    kind: str
    notifier: str
    status: str
    attempts: int | None
    at: datetime | None
    error: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = pagination.decode(cursor, 1)[0]
    if not isinstance(value, int) or isinstance(value, bool):
        pagination.invalid()
    return value


def _alert(row: dict[str, Any]) -> AlertOut:
    return AlertOut(
        **{
            **row,
            "published_at": row.get("published_at"),
            "raised_at": parse_utc(str(row["raised_at"])),
        }
    )


@router.get("", response_model=AlertPage, responses=ERRORS)
def alerts(
    kind: str | None = Query(None, min_length=1, max_length=32),
    source: str | None = Query(None, min_length=1, max_length=32),
    coin: str | None = Query(None, min_length=1, max_length=32),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> AlertPage:
    """Alerts newest first (listings first among what matters: filter `kind=listing`)."""
    rows, more = alerts_page(
        st.engine, limit=limit, before=_before(cursor), kind=kind, source=source, coin=coin
    )
    nxt = pagination.encode(rows[-1]["id"]) if more else None
    return AlertPage(items=[_alert(r) for r in rows], next_cursor=nxt)


@router.get("/deliveries", response_model=DeliveryPage, responses=ERRORS)
def deliveries(
    status: Literal["ok", "failed", "pending"] | None = Query(None),
    notifier: str | None = Query(None, min_length=1, max_length=32),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> DeliveryPage:
    """Each alert's delivery to each notifier, newest alert first (pages by alert)."""
    rows, more = alerts_page(st.engine, limit=limit, before=_before(cursor))
    items = []
    for row in rows:
        for name, outcome in sorted((row["deliveries"] or {}).items()):
            outcome = outcome if isinstance(outcome, dict) else {}
            if (status and outcome.get("status") != status) or (notifier and name != notifier):
                continue
            at = outcome.get("at")
            error = outcome.get("error")
            items.append(
                DeliveryOut(
                    alert_id=row["id"],
                    title=row["title"],
                    kind=row["kind"],
                    notifier=name,
                    status=str(outcome.get("status", "unknown")),
                    attempts=outcome.get("attempts"),
                    at=parse_utc(str(at)) if at else None,
                    error=mask_text(str(error), 500) if error else None,
                )
            )
    nxt = pagination.encode(rows[-1]["id"]) if more else None
    return DeliveryPage(items=items, next_cursor=nxt)
