"""`/api/v1/ops/dead-letters`: the queue's poison jobs (admins only): each with its kind, its
slot, its arguments, how often it was started and its last error (masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from omc.api.auth.deps import admin_user, state
from omc.api.auth.users import UserInfo
from omc.api.state import ApiState
from omc.ops.queue.journal import dead_letters

router = APIRouter(prefix="/ops", tags=["ops"])


class DeadLetterOut(BaseModel):
    id: str
    kind: str
    slot_key: str | None
    args: dict[str, Any]
    attempts: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(
    limit: int = Query(50, ge=1, le=500),
    _admin: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> list[DeadLetterOut]:
    """The newest dead letters first."""
    return [DeadLetterOut(**vars(d)) for d in dead_letters(st.engine, limit)]
